//! The grayscale core as a plain native HTTP server: the baseline that
//! `scripts/bench` compares the wasm component with.
//! Usage: native-server ADDR

use bench::{read_message, write_response};
use image_api_grayscale::{ImageLimits, Problem, grayscale};
use std::io::BufReader;
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:19100".into());
    let listener = TcpListener::bind(&addr)?;
    let limits = ImageLimits::default();
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut w = stream.try_clone()?;
            let mut r = BufReader::new(stream);
            while let Some(req) = read_message(&mut r)? {
                match grayscale(&req.body, &limits) {
                    Ok(out) => write_response(&mut w, 200, out.content_type(), &out.bytes)?,
                    Err(e) => write_response(&mut w, e.status(), "application/json", &e.to_json())?,
                }
            }
            Ok(())
        });
    }
    Ok(())
}
