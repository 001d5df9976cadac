//! What the upload shows on stderr: a bar per file and a total when stderr is a
//! terminal, a few plain lines per file otherwise, nothing but errors with `--quiet`.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chunkd_client::{Error, Observer, Uploaded};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The template of every bar, each file's and the total.
const BAR: &str =
    "{prefix:<24!} [{bar:32}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}  ETA {eta}";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Quiet,
}

/// The whole command's output.
pub struct Reporter {
    mode: Mode,
    multi: MultiProgress,
    total: ProgressBar,
    files: Vec<Arc<FileProgress>>,
}

impl Reporter {
    pub fn new(paths: &[PathBuf], quiet: bool) -> Reporter {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let target = if mode == Mode::Bars {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = |template| {
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ")
        };
        let sizes: Vec<u64> = paths
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .collect();
        // Drawn below the files' bars: added to the display after them.
        let total =
            ProgressBar::with_draw_target(Some(sizes.iter().sum()), ProgressDrawTarget::hidden())
                .with_style(style(BAR));
        total.set_prefix(format!("total ({} files)", paths.len()));
        let files = paths
            .iter()
            .zip(&sizes)
            .map(|(path, &size)| {
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                let bar = multi.add(ProgressBar::new(size).with_style(style(BAR)));
                bar.set_prefix(name.clone());
                Arc::new(FileProgress {
                    mode,
                    name,
                    bar,
                    multi: multi.clone(),
                    total: total.clone(),
                    state: Mutex::new(Counting {
                        size,
                        ..Counting::default()
                    }),
                })
            })
            .collect();
        let total = multi.add(total);
        Reporter {
            mode,
            multi,
            total,
            files,
        }
    }

    /// The observers of the files, in the order of the paths given to [`Reporter::new`].
    pub fn files(&self) -> &[Arc<FileProgress>] {
        &self.files
    }

    /// A message above the bars (or a line).
    pub fn note(&self, message: &str) {
        eprint_line(self.mode, &self.multi, message, true);
    }

    /// A finished upload's URL, on stdout.
    pub fn url(&self, url: &str) {
        self.multi.suspend(|| println!("{url}"));
    }

    pub fn finish(&self) {
        if self.mode == Mode::Bars {
            self.total.abandon();
        }
    }

    pub fn interrupted(&self) {
        for file in &self.files {
            file.bar.abandon();
        }
        self.total.abandon();
        if self.mode != Mode::Quiet {
            eprintln!("chunkd upload: interrupted; the same command resumes where it stopped");
        }
    }
}

/// Prints a line on stderr; with bars, above them. `always` lines show even when quiet.
fn eprint_line(mode: Mode, multi: &MultiProgress, line: &str, always: bool) {
    match mode {
        Mode::Bars => {
            let _ = multi.println(line);
        }
        Mode::Lines => eprintln!("{line}"),
        Mode::Quiet if always => eprintln!("{line}"),
        Mode::Quiet => {}
    }
}

#[derive(Default)]
struct Counting {
    /// Bytes counted so far (for the total's deltas).
    position: u64,
    size: u64,
    /// The next quarter a plain line is printed at.
    next_quarter: u64,
    since: Option<(Instant, u64)>,
}

/// One file's bar or lines.
pub struct FileProgress {
    mode: Mode,
    name: String,
    bar: ProgressBar,
    multi: MultiProgress,
    total: ProgressBar,
    state: Mutex<Counting>,
}

impl FileProgress {
    fn line(&self, text: &str) {
        eprint_line(
            self.mode,
            &self.multi,
            &format!("{}: {text}", self.name),
            false,
        );
    }

    pub fn done(&self, uploaded: &Uploaded) {
        self.bar.finish();
        let since = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .since;
        let (elapsed, sent) = since.map_or((Duration::ZERO, 0), |(at, from)| {
            (at.elapsed(), uploaded.size.saturating_sub(from))
        });
        if self.mode == Mode::Lines {
            self.line(&format!(
                "done, {} in {:.1}s{}",
                HumanBytes(uploaded.size),
                elapsed.as_secs_f64(),
                speed(sent, elapsed)
            ));
        }
    }

    pub fn failed(&self, error: &Error) {
        self.bar.abandon();
        // A file's own error already names it.
        let error = match error {
            Error::File { message, .. } => message.clone(),
            other => other.to_string(),
        };
        eprint_line(
            self.mode,
            &self.multi,
            &format!("{}: failed: {error}", self.name),
            true,
        );
    }
}

fn speed(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 0.001 || bytes == 0 {
        return String::new();
    }
    format!(" ({}/s)", HumanBytes((bytes as f64 / secs) as u64))
}

impl Observer for FileProgress {
    fn started(&self, size: u64, offset: u64, resumed: bool) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let old = state.size;
            state.size = size;
            state.since = Some((Instant::now(), offset));
            state.next_quarter = offset
                .saturating_mul(4)
                .checked_div(size)
                .map_or(4, |q| q + 1);
            // The total was sized from a first look at the file; follow what is sent.
            self.total
                .set_length((self.total.length().unwrap_or(0) + size).saturating_sub(old));
        }
        self.bar.set_length(size);
        self.bar.reset_eta();
        if resumed {
            self.line(&format!(
                "resuming at {offset} bytes ({} of {})",
                HumanBytes(offset),
                HumanBytes(size)
            ));
        } else if self.mode == Mode::Lines {
            self.line(&format!("uploading {}", HumanBytes(size)));
        }
        self.progress(offset);
    }

    fn progress(&self, sent: u64) {
        self.bar.set_position(sent);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if sent >= state.position {
            self.total.inc(sent - state.position);
        } else {
            let back = state.position - sent;
            self.total
                .set_position(self.total.position().saturating_sub(back));
        }
        state.position = sent;
        if self.mode == Mode::Lines && state.size > 0 && state.next_quarter < 4 {
            let quarter = sent.saturating_mul(4) / state.size;
            if quarter >= state.next_quarter && quarter < 4 {
                state.next_quarter = quarter + 1;
                let (at, from) = state.since.unwrap_or((Instant::now(), 0));
                let size = state.size;
                drop(state);
                self.line(&format!(
                    "{}% ({} of {}){}",
                    quarter * 25,
                    HumanBytes(sent),
                    HumanBytes(size),
                    speed(sent.saturating_sub(from), at.elapsed())
                ));
            }
        }
    }

    fn warning(&self, message: &str) {
        eprint_line(
            self.mode,
            &self.multi,
            &format!("{}: warning: {message}", self.name),
            true,
        );
    }

    fn retrying(&self, error: &Error, attempt: u32, delay: Duration) {
        self.line(&format!(
            "attempt {attempt} failed ({error}); retrying in {:.1}s",
            delay.as_secs_f64()
        ));
    }
}
