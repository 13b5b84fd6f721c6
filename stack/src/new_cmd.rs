//! `stack new NAME [--from blank|grayscale|events] [--dry-run]` and
//! `stack new --remove NAME [--dry-run]`: the file system side of
//! `stack::scaffold`.

use stack::scaffold::{TEMPLATES, adapt_manifest, check_name, rename, set_member};
use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: stack new NAME [--from blank|grayscale|events] [--dry-run] | stack new --remove NAME [--dry-run]";

/// Runs `stack new` in the repository at `root`; usage errors and refusals
/// exit 2, as the old script did.
pub fn run(root: &Path, args: &[String]) -> ExitCode {
    match parse(args).and_then(|cmd| cmd.run(root)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\x1b[1;31merror:\x1b[0m {e}");
            ExitCode::from(2)
        }
    }
}

struct Cmd {
    name: String,
    from: &'static (&'static str, &'static str, &'static str),
    remove: bool,
    dry: bool,
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    let (mut name, mut from, mut remove, mut dry) = (None, "blank", false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--remove" => remove = true,
            "--dry-run" => dry = true,
            "--from" => from = it.next().ok_or(USAGE)?,
            f if f.starts_with("--from=") => from = &f[7..],
            f if f.starts_with('-') => return Err(USAGE.into()),
            n if name.is_none() => name = Some(n.to_string()),
            _ => return Err(USAGE.into()),
        }
    }
    let name = name.ok_or(USAGE)?;
    check_name(&name)?;
    let from = TEMPLATES
        .iter()
        .find(|t| t.0 == from)
        .ok_or("--from is blank, grayscale or events")?;
    Ok(Cmd {
        name,
        from,
        remove,
        dry,
    })
}

impl Cmd {
    fn run(&self, root: &Path) -> Result<(), String> {
        let cargo = root.join("Cargo.toml");
        let manifest = fs::read_to_string(&cargo).map_err(|e| format!("Cargo.toml: {e}"))?;
        let dir = root.join(&self.name);
        let name = &self.name;
        if self.remove {
            let edited = set_member(&manifest, name, false)?;
            if !dir.join(service_manifest::FILE).is_file() {
                return Err(format!("{name}/ is not a service (no service.toml)"));
            }
            if self.dry {
                println!(
                    "would delete {name}/, remove it from the workspace members and run `stack gen`"
                );
                return Ok(());
            }
            fs::remove_dir_all(&dir).map_err(|e| format!("{name}/: {e}"))?;
            fs::write(&cargo, edited).map_err(|e| format!("Cargo.toml: {e}"))?;
            // What the supervisor kept for it: pid files, tokens.
            for kept in ["run", "tokens"] {
                let _ = fs::remove_dir_all(root.join(".data").join(kept).join(name));
            }
            regenerate(root)?;
            println!("removed {name}");
            return Ok(());
        }
        let (template, folder, id) = *self.from;
        let edited = set_member(&manifest, name, true)?;
        if dir.exists() {
            return Err(format!("{name}/ exists already; refusing to overwrite it"));
        }
        if self.dry {
            println!("would create {name}/ as a copy of {folder}/, renamed from {id}");
            println!(
                "would add \"{name}\" to the workspace members (Cargo.toml) and run `stack gen`"
            );
            return Ok(());
        }
        copy(&root.join(folder), &dir, &|text| rename(text, id, name))?;
        let path = dir.join(service_manifest::FILE);
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        fs::write(&path, adapt_manifest(&text, name, template != "blank")?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if template != "blank" {
            let readme = dir.join("README.md");
            if let Ok(text) = fs::read_to_string(&readme) {
                let (title, rest) = text.split_once('\n').unwrap_or((&text, ""));
                let note = format!(
                    "\nMade by `stack new {name} --from {template}`: a copy of {id} to make yours\n\
                     (its routes private: pick your own public ones in service.toml).\n\
                     `stack new --remove {name}` removes it.\n"
                );
                let _ = fs::write(&readme, format!("{title}\n{note}{rest}"));
            }
        }
        fs::write(&cargo, edited).map_err(|e| format!("Cargo.toml: {e}"))?;
        regenerate(root)?;
        println!(
            "created {name}/ from {folder}/: its manifest is {name}/service.toml; \
             scripts/run (or scripts/build, then `stack run`) serves it"
        );
        Ok(())
    }
}

/// Copies `from` to `to`, each file's text through `edit`; dot folders
/// (a sidecar's `.dapr/`) and build output are left behind.
fn copy(from: &Path, to: &Path, edit: &dyn Fn(&str) -> String) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let file = entry.file_name();
        let file_s = file.to_string_lossy();
        if file_s.starts_with('.') || file_s == "target" {
            continue;
        }
        let src = entry.path();
        if src.is_dir() {
            copy(&src, &to.join(&file), edit)?;
        } else {
            let text = fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            fs::write(to.join(&file), edit(&text))
                .map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// `stack gen`, then Cargo.lock refreshed for the changed members (cargo
/// writes it deterministically).
fn regenerate(root: &Path) -> Result<(), String> {
    for path in stack::generate::write(root, false)? {
        println!("stack gen: wrote {path}");
    }
    let status = Command::new("cargo")
        .args(["metadata", "--format-version", "1"])
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !status.success() {
        return Err("cargo metadata failed (Cargo.lock)".into());
    }
    Ok(())
}
