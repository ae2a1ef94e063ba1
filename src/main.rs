//! The `datalog-rrd` binary: command line, logging, exit code. Everything
//! else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use datalog_rrd::{Config, DEFAULT_CONFIG_TOML};

/// MQTT datalogger: MQTT values → cached rows → round-robin databases.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log filter (tracing syntax); RUST_LOG wins when set.
    #[arg(long, global = true, default_value = "info,rumqttd=off")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (on the built-in default config without -c).
    Run {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and list every problem in it.
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
    /// Print the built-in default configuration, with comments.
    PrintDefaultConfig,
    /// Read a password on standard input (one line) and print its argon2id
    /// hash, for a [[web.users]] entry.
    HashPassword,
    /// Convert a janitoo_datalog_rrd INI configuration to ours (printed on
    /// standard output; what cannot be mapped is listed on standard error).
    ImportJanitoo {
        /// janitoo_datalog_rrd configuration file (INI).
        file: PathBuf,
    },
    /// Bring every file to the layout its template or [[file]] now wants
    /// (step, DS, archives, heartbeat, bounds), keeping its history; the
    /// old file of each rebuild is kept as <name>.rrd.bak. Stop the daemon
    /// first.
    Migrate {
        /// Configuration file (TOML); the built-in default without it.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Only say what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move the file (history) of series OLD to series NEW. Stop the daemon
    /// first; add a [[rule]] with rename so that late samples of OLD follow.
    Rename {
        /// Configuration file (TOML); the built-in default without it.
        #[arg(short, long)]
        config: Option<PathBuf>,
        old: String,
        new: String,
    },
    /// Print the manual page datalog-rrd(8), in roff (for packaging: the
    /// page is generated from this very definition, so it cannot drift).
    #[command(hide = true)]
    Manpage,
}

fn main() -> ExitCode {
    // One malloc arena for every thread (librrd's, the config watcher's,
    // the blocking pool's): each extra arena keeps its own free memory,
    // which on a Pi is resident memory for nothing. Our threads rarely
    // allocate at the same time, so the shared lock costs nothing measurable.
    // And blocks of 1 MiB or more always mapped apart and given back when
    // freed. Left to itself glibc raises that threshold after the first big
    // free, then serves such blocks from the heap, where they stay: each
    // argon2 check (a 19 MiB block) added 19 MB of resident memory until
    // the login throttle stopped a flood of wrong passwords (52 → 134 MB in
    // the embedded broker's flood test).
    // SAFETY: called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    let cli = Cli::parse();
    datalog_rrd::init_logging(&cli.log);
    match cli.command {
        Command::Manpage => {
            let page = clap_mangen::Man::new(Cli::command().name("datalog-rrd")).section("8");
            match page.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("Cannot write the manual page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::PrintDefaultConfig => {
            print!("{DEFAULT_CONFIG_TOML}");
            ExitCode::SUCCESS
        }
        Command::ImportJanitoo { file } => {
            let imported = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
                .and_then(|text| datalog_rrd::import_janitoo(&text));
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
                    ExitCode::from(2)
                }
            }
        }
        Command::HashPassword => {
            let mut line = String::new();
            let read = std::io::stdin().read_line(&mut line);
            let password = line.trim_end_matches(['\r', '\n']);
            if read.is_err() || password.is_empty() {
                eprintln!(
                    "Give the password on standard input, e.g. `datalog-rrd hash-password < file`."
                );
                return ExitCode::from(2);
            }
            match datalog_rrd::hash_password(password) {
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
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: OK", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => {
            let config_path = config.clone();
            match load(config.as_deref()) {
                Ok(config) => run(config, config_path),
                Err(code) => code,
            }
        }
        Command::Migrate { config, dry_run } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match datalog_rrd::migrate_all(config, dry_run) {
                Ok(outcomes) => {
                    let mut failed = false;
                    for o in &outcomes {
                        let backup = o
                            .backup
                            .as_ref()
                            .map(|b| format!(" (old file kept as {})", b.display()))
                            .unwrap_or_default();
                        match &o.result {
                            Ok(change) => println!("{}: {change}{backup}", o.rel_path),
                            Err(e) => {
                                failed = true;
                                println!("{}: NOT MIGRATED: {e}", o.rel_path);
                            }
                        }
                    }
                    if dry_run {
                        println!("Dry run: nothing was changed.");
                    }
                    if failed {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Rename { config, old, new } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let renamed = datalog_rrd::DataDirLock::acquire(&config.data_dir)
                .and_then(|_lock| datalog_rrd::rename_series(&config.data_dir, &old, &new));
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
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// The configuration at `path`, or the built-in default; problems printed.
fn load(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let loaded = match path {
        Some(path) => Config::load(path),
        None => Config::default_config(),
    };
    loaded.map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

/// One async thread: the MQTT → cache path is sequential, librrd has its
/// own thread, and on a Raspberry Pi every thread and malloc arena counts.
/// It also spares a cross-thread wake-up per message.
fn run(config: Config, config_path: Option<PathBuf>) -> ExitCode {
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
    match runtime.block_on(datalog_rrd::run(config, config_path)) {
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
