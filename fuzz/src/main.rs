//! `chunkd-fuzz <target>`: one parser of client input under AFL++ (see
//! `chunkd_http::fuzzing::Target` for the targets and what each checks).

use chunkd_http::fuzzing::Target;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = Target::named(&name) else {
        let names: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
        eprintln!("usage: chunkd-fuzz <target>; targets: {}", names.join(" "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target.run(data));
}
