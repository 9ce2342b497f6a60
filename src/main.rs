use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bbconn",
    version,
    about = "Checks Bitbucket connections: credentials, scopes, repository access, network path and TLS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Check connections from manifests, without a cluster. Exit 0: all Ready; 1: some not; 2: unusable input.
    Check(bbconn::cli::CheckArgs),
    /// Print the BitbucketConnection CRD (what crds/ holds).
    Crd,
    /// Print the reference of every cause and remedy (what docs/causes.md holds).
    Causes,
    /// Run the controller (in-cluster config or KUBECONFIG).
    Run(bbconn::operator::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(match cli.command {
                    Command::Run(_) => "info",
                    _ => "warn",
                })
            }),
        )
        .init();
    match cli.command {
        Command::Crd => match bbconn::crd_yaml() {
            Ok(y) => {
                print!("{y}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bbconn crd: {e}");
                ExitCode::from(2)
            }
        },
        Command::Causes => {
            print!("{}", bbconn::catalogue::reference_markdown());
            ExitCode::SUCCESS
        }
        Command::Check(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bbconn check: cannot start the runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            let code = runtime.block_on(async {
                let mut out = std::io::stdout().lock();
                let mut err = std::io::stderr();
                bbconn::cli::check(args, &mut out, &mut err).await
            });
            ExitCode::from(u8::try_from(code).unwrap_or(2))
        }
        Command::Run(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bbconn run: cannot start the runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(bbconn::operator::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "bbconn run stopped");
                    ExitCode::from(1)
                }
            }
        }
    }
}
