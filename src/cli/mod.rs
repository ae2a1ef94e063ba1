//! The bodies of the binary's subcommands: each takes the parsed
//! arguments, prints what the user asked for, and returns the exit code
//! (0 done, 1 failed, 2 the input was wrong). `main.rs` only maps a
//! subcommand to one of these.

mod janitoo_import;
mod logging;
mod migrate;
mod munin_import;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Config, DEFAULT_CONFIG_TOML};
use crate::shared::data_lock::DataDirLock;

pub use self::janitoo_import::{Imported, import as import_janitoo};
pub use self::logging::init as init_logging;

/// Exit code of a command whose input (config, file, arguments) is wrong.
fn bad_input() -> ExitCode {
    ExitCode::from(2)
}

/// `run [-c FILE]`: the daemon, until SIGTERM or SIGINT.
///
/// One async thread: the MQTT → cache path is sequential, librrd has its
/// own thread, and on a Raspberry Pi every thread and malloc arena counts.
/// It also spares a cross-thread wake-up per message.
pub fn run(config_path: Option<PathBuf>) -> ExitCode {
    let config = match load(config_path.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Some(web) = &config.web {
        // SAFETY: no other thread exists yet (the runtime starts below).
        unsafe { crate::clock::local::use_zone(&web.time_zone) };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ran = runtime.block_on(async {
        let signals = crate::app::Signals::from_os()?;
        crate::app::run(config, config_path, signals).await
    });
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "datalog-rrd stopped with an error."
            );
            ExitCode::FAILURE
        }
    }
}

/// `check-config FILE`: every problem, each with its key.
pub fn check_config(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            println!("{}: OK", file.display());
            for w in config.warnings() {
                println!("  warning: {}: {}", w.key, w.message);
            }
            say_browser_jobs(&config);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            bad_input()
        }
    }
}

/// The poll jobs made in the browser that the daemon would run with this
/// configuration, and those it would leave out, with why (it starts
/// either way: these are warnings).
fn say_browser_jobs(config: &Config) {
    use crate::config::browser_jobs;
    let path = browser_jobs::path(&config.data_dir);
    match browser_jobs::read(&config.data_dir) {
        Ok(stored) if stored.is_empty() => {}
        Ok(stored) => {
            let count = stored.len();
            let (_, problems) = config.clone().with_browser_jobs(&stored);
            println!("{}: {count} poll jobs made in the browser", path.display());
            for p in problems {
                println!("  left out: {}: {}", p.key, p.message);
            }
        }
        Err(why) => eprintln!(
            "{}: not readable ({why}); the daemon would set it aside",
            path.display()
        ),
    }
}

/// `print-default-config`: the built-in configuration, commented.
pub fn print_default_config() -> ExitCode {
    print!("{DEFAULT_CONFIG_TOML}");
    ExitCode::SUCCESS
}

/// `hash-password < FILE`: the argon2id hash of the password on the first
/// line of standard input.
pub fn hash_password() -> ExitCode {
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    let password = line.trim_end_matches(['\r', '\n']);
    if read.is_err() || password.is_empty() {
        eprintln!("Give the password on standard input, e.g. `datalog-rrd hash-password < file`.");
        return bad_input();
    }
    match crate::password::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Cannot hash: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `import-janitoo FILE`: the TOML on standard output, the report on
/// standard error.
pub fn import_janitoo_file(file: &Path) -> ExitCode {
    let imported = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))
        .and_then(|text| import_janitoo(&text));
    match imported {
        Ok(imported) => {
            print!("{}", imported.toml);
            eprintln!("{} file(s) converted.", imported.files);
            for line in &imported.not_mapped {
                eprintln!("not mapped: {line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            bad_input()
        }
    }
}

/// `import-munin DIR`: the TOML on standard output, the report on
/// standard error.
pub fn import_munin_dir(dir: &Path) -> ExitCode {
    let datafile = match std::fs::read_to_string(dir.join("datafile")) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "{}: cannot read Munin's datafile ({e}); is this Munin's dbdir (/var/lib/munin)?",
                dir.join("datafile").display()
            );
            return bad_input();
        }
    };
    let mut files = Vec::new();
    let groups = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return bad_input();
        }
    };
    for group in groups.flatten().filter(|g| g.path().is_dir()) {
        let Ok(entries) = std::fs::read_dir(group.path()) else {
            continue;
        };
        for f in entries.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".rrd") {
                files.push(format!("{}/{name}", group.file_name().to_string_lossy()));
            }
        }
    }
    files.sort();
    let dir_text = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let imported = munin_import::import(&dir_text.to_string_lossy(), &files, &datafile);
    print!("{}", imported.toml);
    eprintln!(
        "{} file(s) of {} node(s) mapped.",
        imported.files, imported.nodes
    );
    for line in &imported.not_mapped {
        eprintln!("not mapped: {line}");
    }
    ExitCode::SUCCESS
}

/// `migrate [-c FILE] [--dry-run]`: one line per file, then whether
/// anything was changed.
pub fn migrate(config_path: Option<&Path>, dry_run: bool) -> ExitCode {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let outcomes = match migrate::migrate_all(config, dry_run) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            eprintln!("{e}");
            return bad_input();
        }
    };
    for outcome in &outcomes {
        println!("{outcome}");
    }
    if dry_run {
        println!("Dry run: nothing was changed.");
    }
    if outcomes.iter().any(|o| o.result.is_err()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `rename [-c FILE] OLD NEW`: the file moved, and the rule that makes late
/// samples of OLD follow.
pub fn rename(config_path: Option<&Path>, old: &str, new: &str) -> ExitCode {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let renamed = DataDirLock::acquire(&config.data_dir)
        .and_then(|_lock| crate::rrd::rename_series(&config.data_dir, old, new));
    match renamed {
        Ok((from, to)) => {
            println!("{from}.rrd → {to}.rrd");
            println!(
                "So that late samples of {old:?} follow, add to the configuration:\n\n\
                 [[rule]]\ntopics = [{old:?}]\nrename = {new:?}\nmove_history = true"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            bad_input()
        }
    }
}

/// `manpage` (hidden, for packaging): `command` as datalog-rrd(8) in roff,
/// generated from the CLI's own definition so that it cannot drift.
pub fn manpage(command: clap::Command) -> ExitCode {
    let page = clap_mangen::Man::new(command.name("datalog-rrd")).section("8");
    match page.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Cannot write the manual page: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration at `path`, or the built-in default; problems printed.
fn load(path: Option<&Path>) -> Result<Config, ExitCode> {
    let loaded = match path {
        Some(path) => Config::load(path),
        None => Config::default_config(),
    };
    loaded.map_err(|e| {
        eprintln!("{e}");
        bad_input()
    })
}
