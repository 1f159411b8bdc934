//! A plugin whose `transform` misbehaves according to `config.mode`, so the
//! gateway's tests can check that every limit holds against real wasm:
//!
//! | mode          | behaviour                                              |
//! |---------------|--------------------------------------------------------|
//! | `echo`        | returns the request unchanged                          |
//! | `drop_if`     | drops when `payload.drop == true`, else echoes         |
//! | `error`       | returns `Err("asked to fail")`                         |
//! | `loop`        | spins forever (fuel / epoch deadline)                  |
//! | `refused_then_loop` | asks for 1 GiB (refused, handled), then spins    |
//! | `grow`        | allocates without bound (memory limit)                 |
//! | `recurse`     | recurses without bound (stack overflow trap)           |
//! | `recurse_in_memory` | recurses with a local in linear memory (its shadow stack runs out first) |
//! | `trap`        | panics (`unreachable`)                                 |
//! | `big_output`  | returns a body of `config.bytes` (default 4 MiB)       |
//! | `crlf_header` | adds a header whose value contains CR LF               |
//! | `private_url` | sends to `http://169.254.169.254/`                     |
//! | `set`         | overrides `method`, `url`, appends `header: [n, v]`    |
//!
//! `validate-config` rejects configs that are not a JSON object with a known
//! `mode`.

wit_bindgen::generate!({
    path: "../../../plugin-sdk/wit",
    world: "plugin",
});

use serde_json::Value;

const MODES: &[&str] = &[
    "echo",
    "drop_if",
    "error",
    "loop",
    "refused_then_loop",
    "grow",
    "recurse",
    "recurse_in_memory",
    "trap",
    "big_output",
    "crlf_header",
    "private_url",
    "set",
];

struct Hostile;

fn parse(config: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(config).map_err(|e| format!("config: {e}"))?;
    match v.get("mode").and_then(Value::as_str) {
        Some(m) if MODES.contains(&m) => Ok(v),
        Some(m) => Err(format!("mode: unknown mode `{m}`")),
        None => Err("mode: required".to_string()),
    }
}

/// Read by `recurse` so the compiler cannot see that it never ends.
static KEEP_RECURSING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// Recursion that lives on the wasm (native) stack: no locals in linear
/// memory (a `black_box` would put one on the shadow stack there, which then
/// runs out first), not a tail call, so the host's stack limit ends it.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if KEEP_RECURSING.load(core::sync::atomic::Ordering::Relaxed) {
        recurse(depth + 1).wrapping_mul(31).wrapping_add(depth)
    } else {
        depth
    }
}

/// Recursion that also keeps a local in linear memory (`black_box` takes its address): the
/// shadow stack at the bottom of memory runs out before the host's stack limit, and the
/// next frame writes below address 0.
#[inline(never)]
fn recurse_in_memory(depth: u64) -> u64 {
    if core::hint::black_box(true) {
        recurse_in_memory(depth + 1)
            .wrapping_mul(31)
            .wrapping_add(depth)
    } else {
        depth
    }
}

impl Guest for Hostile {
    fn validate_config(config: String) -> Result<(), String> {
        parse(&config).map(|_| ())
    }

    fn transform(event: Event, mut request: Request, config: String) -> Result<Action, String> {
        let cfg = parse(&config)?;
        match cfg["mode"].as_str().unwrap_or_default() {
            "echo" => Ok(Action::Deliver(request)),
            "drop_if" => {
                let payload: Value =
                    serde_json::from_str(&event.payload).map_err(|e| e.to_string())?;
                if payload.get("drop") == Some(&Value::Bool(true)) {
                    Ok(Action::Drop("payload.drop is true".to_string()))
                } else {
                    Ok(Action::Deliver(request))
                }
            }
            "error" => Err("asked to fail".to_string()),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            "refused_then_loop" => {
                // A growth the host refuses and the plugin handles: what ends the call
                // is the deadline (or fuel), and that is what must be reported.
                let mut big: Vec<u8> = Vec::new();
                let refused = big.try_reserve_exact(1 << 30).is_err();
                let mut n: u64 = u64::from(refused);
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    core::hint::black_box(&hoard);
                }
            }
            "recurse" => {
                let r = recurse(0);
                Err(format!("unreachable: {r}"))
            }
            "recurse_in_memory" => {
                let r = recurse_in_memory(0);
                Err(format!("unreachable: {r}"))
            }
            "trap" => panic!("asked to trap"),
            "big_output" => {
                let n = cfg.get("bytes").and_then(Value::as_u64).unwrap_or(4 << 20) as usize;
                request.body = vec![b'x'; n];
                Ok(Action::Deliver(request))
            }
            "crlf_header" => {
                request
                    .headers
                    .push(("x-evil".to_string(), "a\r\nInjected: yes".to_string()));
                Ok(Action::Deliver(request))
            }
            "private_url" => {
                request.url = "http://169.254.169.254/".to_string();
                Ok(Action::Deliver(request))
            }
            "set" => {
                if let Some(m) = cfg.get("method").and_then(Value::as_str) {
                    request.method = m.to_string();
                }
                if let Some(u) = cfg.get("url").and_then(Value::as_str) {
                    request.url = u.to_string();
                }
                if let Some([n, v]) = cfg
                    .get("header")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                {
                    request.headers.push((
                        n.as_str().unwrap_or_default().to_string(),
                        v.as_str().unwrap_or_default().to_string(),
                    ));
                }
                Ok(Action::Deliver(request))
            }
            other => Err(format!("mode: unknown mode `{other}`")),
        }
    }
}

export!(Hostile);
