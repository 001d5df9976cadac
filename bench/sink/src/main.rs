//! A discarding tus endpoint: POST answers 201 with a Location, PATCH reads and drops its
//! body and answers 204 with the offset a server would report, HEAD answers offset 0.
//! It does no storage, no locking and no parsing beyond the request head, so what a
//! client reaches against it is the ceiling for any server on this machine.

use std::env;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = env::args().nth(1).unwrap_or_else(|| "127.0.0.1:1090".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("sink listening on {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve(socket).await;
        });
    }
}

async fn serve(socket: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(256 << 10, socket);
    let mut line = String::new();
    let mut sink = vec![0u8; 256 << 10];
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let method = line.split(' ').next().unwrap_or_default().to_owned();
        let (mut length, mut offset) = (0u64, 0u64);
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim().parse().unwrap_or(0);
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value,
                    "upload-offset" => offset = value,
                    _ => {}
                }
            }
        }
        let mut left = length;
        while left > 0 {
            let want = left.min(sink.len() as u64) as usize;
            let n = reader.read(&mut sink[..want]).await?;
            if n == 0 {
                return Ok(());
            }
            left -= n as u64;
        }
        let reply = match method.as_str() {
            "POST" => "HTTP/1.1 201 Created\r\nLocation: /files/sink\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: 0\r\n\r\n".to_owned(),
            "PATCH" => format!(
                "HTTP/1.1 204 No Content\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {}\r\n\r\n",
                offset + length
            ),
            _ => "HTTP/1.1 200 OK\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nUpload-Length: 0\r\nContent-Length: 0\r\n\r\n".to_owned(),
        };
        reader.get_mut().write_all(reply.as_bytes()).await?;
    }
}
