//! The `datalog-rrd` binary: the command line, mapped to the library's
//! commands (`cli`), and the process-wide settings made before any thread.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use datalog_rrd::cli;

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
    /// Continue Munin's files: print a configuration (on standard output)
    /// whose [[file]]s are Munin's own, fed by [[poll]] jobs of its nodes;
    /// what cannot be mapped is listed on standard error.
    ImportMunin {
        /// Munin's data directory (dbdir), e.g. /var/lib/munin.
        dir: PathBuf,
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
    tune_malloc();
    let args = Cli::parse();
    cli::init_logging(&args.log);
    match args.command {
        Command::Run { config } => cli::run(config),
        Command::CheckConfig { file } => cli::check_config(&file),
        Command::PrintDefaultConfig => cli::print_default_config(),
        Command::HashPassword => cli::hash_password(),
        Command::ImportJanitoo { file } => cli::import_janitoo_file(&file),
        Command::ImportMunin { dir } => cli::import_munin_dir(&dir),
        Command::Migrate { config, dry_run } => cli::migrate(config.as_deref(), dry_run),
        Command::Rename { config, old, new } => cli::rename(config.as_deref(), &old, &new),
        Command::Manpage => cli::manpage(Cli::command()),
    }
}

/// One malloc arena for every thread (librrd's, the config watcher's, the
/// blocking pool's): each extra arena keeps its own free memory, which on a
/// Pi is resident memory for nothing. Our threads rarely allocate at the
/// same time, so the shared lock costs nothing measurable. And blocks of
/// 1 MiB or more always mapped apart and given back when freed. Left to
/// itself glibc raises that threshold after the first big free, then
/// serves such blocks from the heap, where they stay: each argon2 check (a
/// 19 MiB block) added 19 MB of resident memory until the login throttle
/// stopped a flood of wrong passwords (52 → 134 MB in the embedded broker's
/// flood test).
fn tune_malloc() {
    // SAFETY: called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
