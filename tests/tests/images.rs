//! Grayscale on the running stack: real photos and animated GIFs come back
//! gray and the same size, hostile images get a 4xx (never a crash), and
//! the configured image limits reach the components.

use base64::Engine;
use e2e::*;
use image::{AnimationDecoder, ColorType, ImageFormat};

#[test]
fn grayscale_of_a_real_photo_is_gray_and_same_size() {
    let photo = sample("cat.jpg");
    let ip = client_ip(1);
    let r = post_as(
        &ip,
        &format!("{GRAYSCALE}/grayscale"),
        &[("accept", "image/png")],
        &photo,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type, "image/png");
    let out = image::load_from_memory_with_format(&r.body, ImageFormat::Png).expect("PNG");
    assert_eq!(out.color(), ColorType::L8);
    assert_eq!(image_dims(&r.body), image_dims(&photo));

    // Default answer: base64 text of the PNG, as the original template.
    let r = post_as(
        &ip,
        &format!("{GRAYSCALE}/grayscale"),
        &[],
        &sample("coffee.jpg"),
    );
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(&r.body)
        .expect("base64");
    assert_eq!(image_dims(&png), image_dims(&sample("coffee.jpg")));

    // Through Dapr service invocation, a PNG in.
    let r = dapr_post(
        "web",
        &format!("{DAPR_WEB}/v1.0/invoke/image-api-grayscale/method/grayscale"),
        // The gateway's word for who the client is: honoured, since the call
        // comes through grayscale's own sidecar with its app token.
        &[("accept", "image/png"), ("forwarded", &format!("for={ip}"))],
        &sample("rocket.png"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(image_dims(&r.body), image_dims(&sample("rocket.png")));
}

#[test]
fn animated_gif_stays_an_animated_gray_gif() {
    let gif = sample("cat-animated.gif");
    let r = post_as(
        &client_ip(2),
        &format!("{GRAYSCALE}/grayscale"),
        &[("accept", "image/gif")],
        &gif,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type, "image/gif");
    let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&r.body))
        .expect("GIF")
        .into_frames()
        .collect_frames()
        .expect("frames");
    assert_eq!(frames.len(), 2);
    for f in &frames {
        assert!(
            f.buffer().pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
            "frame not gray"
        );
    }
    assert_eq!(image_dims(&r.body), image_dims(&gif));
}

/// xorshift64*: deterministic noise without a dependency.
fn noise(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn hostile_images_get_4xx_or_a_result_never_a_crash() {
    let url = format!("{GRAYSCALE}/grayscale");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let signatures: [&[u8]; 5] = [
        b"\x89PNG\r\n\x1a\n",
        b"\xFF\xD8\xFF\xE0",
        b"GIF89a",
        b"BM",
        b"RIFF\0\0\0\0WEBPVP8 ",
    ];
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Valid signatures followed by noise.
    for sig in signatures {
        for len in [0usize, 7, 64, 5000] {
            let mut b = sig.to_vec();
            b.extend((0..len).map(|_| noise(&mut seed) as u8));
            cases.push(b);
        }
    }
    // Real images with bytes flipped at random places.
    for name in ["cat.jpg", "rocket.png", "cat-animated.gif"] {
        for _ in 0..8 {
            let mut b = sample(name);
            for _ in 0..16 {
                let i = (noise(&mut seed) as usize) % b.len();
                b[i] ^= (noise(&mut seed) as u8) | 1;
            }
            cases.push(b);
        }
    }
    for (i, body) in cases.iter().enumerate() {
        let ip = format!("127.0.2.{}", 1 + i % 250);
        let r = post_as(&ip, &url, &[("accept", "image/png")], body);
        assert!(
            [200, 400, 415, 422].contains(&r.status),
            "case {i}: {} {}",
            r.status,
            r.text()
        );
        if r.status != 200 {
            // The code must be one the README documents for that status.
            let documented: &[&str] = match r.status {
                400 => &["empty_body", "bad_request"],
                415 => &["unsupported_media_type"],
                _ => &["invalid_image", "image_too_large", "too_many_frames"],
            };
            let code = r.json()["code"].as_str().unwrap_or_default().to_string();
            assert!(documented.contains(&code.as_str()), "case {i}: {code}");
            r.assert_error(r.status, &code);
        }
    }
    assert_eq!(get(&format!("{GRAYSCALE}/healthz")).status, 200);
}

#[test]
fn a_gif_of_many_large_frames_is_refused() {
    // 30 frames of 1000x1000: tiny once LZW-compressed, 120 MB decoded.
    let mut gif = Vec::new();
    {
        let frame = image::Frame::new(image::RgbaImage::from_pixel(
            1000,
            1000,
            image::Rgba([9, 9, 9, 255]),
        ));
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        enc.encode_frames(std::iter::repeat_n(frame, 30))
            .expect("encode");
    }
    assert!(gif.len() < 10_000_000);
    let r = post_as(&client_ip(9), &format!("{GRAYSCALE}/grayscale"), &[], &gif);
    assert_eq!(r.status, 422, "{}", r.text());
    let code = r.json()["code"].as_str().map(str::to_string);
    assert!(
        matches!(code.as_deref(), Some("too_many_frames" | "image_too_large")),
        "{code:?}"
    );
}

#[test]
fn configured_image_limits_reach_the_components() {
    // scripts/test starts the stack with MAX_IMAGE_SIDE=5000 (default 8192);
    // dapr.yaml must pass it on into both image services.
    let side: u32 = std::env::var("MAX_IMAGE_SIDE")
        .expect("MAX_IMAGE_SIDE (set by scripts/test)")
        .parse()
        .expect("a number");
    assert_ne!(side, 8192, "must differ from the default to prove anything");
    let mut png = Vec::new();
    image::GrayImage::from_pixel(side + 1, 1, image::Luma([7]))
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .expect("encode");
    for (url, n) in [
        (format!("{GRAYSCALE}/grayscale"), 40),
        ("http://127.0.0.1:9006/classify".to_string(), 41),
    ] {
        let r = post_as(&client_ip(n), &url, &[], &png);
        r.assert_error(422, "image_too_large");
        let limit = format!("{side}x{side}");
        assert!(r.text().contains(&limit), "{url}: {}", r.text());
    }
    // One pixel less is fine.
    let mut ok = Vec::new();
    image::GrayImage::from_pixel(side, 1, image::Luma([7]))
        .write_to(&mut std::io::Cursor::new(&mut ok), ImageFormat::Png)
        .expect("encode");
    let r = post_as(&client_ip(42), &format!("{GRAYSCALE}/grayscale"), &[], &ok);
    assert_eq!(r.status, 200, "{}", r.text());
}
