//! `herald-bindgen <app.wasm> <out-dir>`: generates the console's JavaScript glue and its
//! processed wasm (`herald.js`, `herald_bg.wasm`) for loading as an ES module in the browser,
//! as `wasm-bindgen --target web --out-name herald --no-typescript` does.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--version" => {
            println!("herald-bindgen {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        [input, out_dir] => match generate(input.into(), out_dir.into()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("herald-bindgen: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: herald-bindgen <app.wasm> <out-dir> | --version");
            ExitCode::from(2)
        }
    }
}

fn generate(input: PathBuf, out_dir: PathBuf) -> anyhow::Result<()> {
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen.web(true)?;
    bindgen
        .input_path(input)
        .out_name("herald")
        .typescript(false)
        // As the CLI does: `init()` without an argument loads `herald_bg.wasm` beside the script.
        .omit_default_module_path(false)
        .generate(out_dir)
}
