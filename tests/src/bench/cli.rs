//! `rollcall-bench [fanout] [--observers 1000,10000] [--rounds 100] [--scenarios memory,redis,redis-2-nodes]`
//! `rollcall-bench users [--registered 1000,10000,100000] [--online 1000] [--burst 200] [--connects 5000]`
//! `rollcall-bench churn [--grace 5] [--observers 100] [--subjects 20] [--rounds 10] [--gap-ms 500]`
//! `rollcall-bench churn --kill-redis [--observers 50] [--subjects 20] [--churn-ms 3000] [--down-ms 2000] [--fsync everysec]`
//! `rollcall-bench cloud [--watchers 10,1000] [--rounds 20] [--online 5000] [--stores dynamodb,redis]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::cloud::CloudStore;
use super::{Scenario, churn, cloud, crash, measure, table, users};

const USAGE: &str = "usage: rollcall-bench [fanout] [--observers N,N..] [--rounds N] [--scenarios memory,redis,redis-2-nodes]
       rollcall-bench users [--registered N,N..] [--online N] [--burst N] [--connects N]
       rollcall-bench churn [--grace S] [--observers N] [--subjects N] [--rounds N] [--gap-ms N]
       rollcall-bench churn --kill-redis [--observers N] [--subjects N] [--churn-ms N] [--down-ms N] [--fsync everysec|always]
       rollcall-bench cloud [--watchers N,N..] [--rounds N] [--online N] [--stores dynamodb,redis]";

/// What to run.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Fanout {
        observers: Vec<usize>,
        rounds: usize,
        scenarios: Vec<Scenario>,
    },
    Users {
        registered: Vec<usize>,
        online: usize,
        burst: usize,
        connects: usize,
    },
    Churn {
        grace: f64,
        observers: usize,
        subjects: usize,
        rounds: usize,
        gap_ms: usize,
    },
    /// `churn --kill-redis`: see [`crash`].
    Crash(crash::CrashOptions),
    Cloud {
        watchers: Vec<usize>,
        rounds: usize,
        online: usize,
        stores: Vec<CloudStore>,
    },
}

fn numbers(flag: &str, s: &str) -> Result<Vec<usize>, String> {
    s.split(',').map(|n| number(flag, n)).collect()
}

fn number(flag: &str, s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag}: {s:?} is not a positive number"))
}

fn parse(args: &[String]) -> Result<Command, String> {
    let (kind, rest) = match args.first().map(String::as_str) {
        Some(k @ ("fanout" | "users" | "churn" | "cloud")) => (k, &args[1..]),
        _ => ("fanout", args),
    };
    let mut cmd = match kind {
        "users" => Command::Users {
            registered: vec![1000, 10_000, 100_000],
            online: 1000,
            burst: 200,
            connects: 5000,
        },
        "churn" => Command::Churn {
            grace: 5.0,
            observers: 100,
            subjects: 20,
            rounds: 10,
            gap_ms: 500,
        },
        "cloud" => Command::Cloud {
            watchers: vec![10, 1000],
            rounds: 20,
            online: 5000,
            stores: vec![CloudStore::DynamoDb, CloudStore::Redis],
        },
        _ => Command::Fanout {
            observers: vec![1000, 10_000],
            // 200 events: enough for a p99.
            rounds: 100,
            scenarios: Scenario::ALL.to_vec(),
        },
    };
    if kind == "churn" && rest.iter().any(|a| a == "--kill-redis") {
        cmd = Command::Crash(crash::CrashOptions {
            watchers: 50,
            subjects: 20,
            churn: Duration::from_secs(3),
            down: Duration::from_secs(2),
            fsync: "everysec",
        });
    }
    let mut it = rest.iter().filter(|a| *a != "--kill-redis");
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let f = flag.as_str();
        match (&mut cmd, f) {
            (Command::Fanout { observers, .. }, "--observers") => *observers = numbers(f, value)?,
            (Command::Fanout { rounds, .. }, "--rounds") => *rounds = number(f, value)?,
            (Command::Fanout { scenarios, .. }, "--scenarios") => {
                *scenarios = value
                    .split(',')
                    .map(|s| {
                        Scenario::parse(s).ok_or_else(|| format!("unknown scenario {s:?}\n{USAGE}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            (Command::Users { registered, .. }, "--registered") => *registered = numbers(f, value)?,
            (Command::Users { online, .. }, "--online") => *online = number(f, value)?,
            (Command::Users { burst, .. }, "--burst") => *burst = number(f, value)?,
            (Command::Users { connects, .. }, "--connects") => *connects = number(f, value)?,
            (Command::Churn { grace, .. }, "--grace") => {
                *grace = value
                    .parse::<f64>()
                    .ok()
                    .filter(|g| (0.0..3600.0).contains(g))
                    .ok_or_else(|| format!("--grace: {value:?} is not a number of seconds"))?
            }
            (Command::Churn { observers, .. }, "--observers") => *observers = number(f, value)?,
            (Command::Churn { subjects, .. }, "--subjects") => *subjects = number(f, value)?,
            (Command::Churn { rounds, .. }, "--rounds") => *rounds = number(f, value)?,
            (Command::Churn { gap_ms, .. }, "--gap-ms") => *gap_ms = number(f, value)?,
            (Command::Crash(o), "--observers") => o.watchers = number(f, value)?,
            (Command::Crash(o), "--subjects") => o.subjects = number(f, value)?,
            (Command::Crash(o), "--churn-ms") => {
                o.churn = Duration::from_millis(number(f, value)? as u64)
            }
            (Command::Crash(o), "--down-ms") => {
                o.down = Duration::from_millis(number(f, value)? as u64)
            }
            (Command::Crash(o), "--fsync") => {
                o.fsync = match value.as_str() {
                    "always" => "always",
                    "everysec" => "everysec",
                    _ => return Err(format!("--fsync: {value:?} is not always or everysec")),
                }
            }
            (Command::Cloud { watchers, .. }, "--watchers") => *watchers = numbers(f, value)?,
            (Command::Cloud { rounds, .. }, "--rounds") => *rounds = number(f, value)?,
            (Command::Cloud { online, .. }, "--online") => *online = number(f, value)?,
            (Command::Cloud { stores, .. }, "--stores") => {
                *stores = value
                    .split(',')
                    .map(|s| match s {
                        "dynamodb" => Ok(CloudStore::DynamoDb),
                        "redis" => Ok(CloudStore::Redis),
                        _ => Err(format!("unknown store {s:?}\n{USAGE}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown option {flag:?} for {kind}\n{USAGE}")),
        }
    }
    Ok(cmd)
}

/// Runs the bench with the process's arguments; the server binary is the
/// `rollcall-node` next to this executable.
pub async fn run() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rollcall-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let node = match node_exe() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("rollcall-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", execute(&node, &command).await);
    ExitCode::SUCCESS
}

fn node_exe() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find my own path: {e}"))?;
    let node = me.with_file_name("rollcall-node");
    if node.exists() {
        Ok(node)
    } else {
        Err(format!(
            "{} is missing (cargo build --release -p rollcall-tests --bins)",
            node.display()
        ))
    }
}

async fn execute(node: &Path, command: &Command) -> String {
    match command {
        Command::Fanout {
            observers,
            rounds,
            scenarios,
        } => {
            let mut rows = Vec::new();
            for &scenario in scenarios {
                for &n in observers {
                    eprintln!("rollcall-bench: {} with {n} observers…", scenario.name());
                    rows.push(measure(node, scenario, n, *rounds).await);
                }
            }
            table(&rows)
        }
        Command::Users {
            registered,
            online,
            burst,
            connects,
        } => {
            let mut rows = Vec::new();
            for &n in registered {
                eprintln!("rollcall-bench: {n} registered users, {online} online…");
                rows.push(users::measure(node, n, (*online).min(n), *burst, *connects).await);
            }
            users::table(&rows)
        }
        Command::Churn {
            grace,
            observers,
            subjects,
            rounds,
            gap_ms,
        } => {
            let gap = Duration::from_millis(*gap_ms as u64);
            let mut rows = Vec::new();
            for g in [Duration::from_secs_f64(*grace), Duration::ZERO] {
                eprintln!("rollcall-bench: churn with a grace of {:?}…", g);
                rows.push(churn::measure(node, g, *observers, *subjects, *rounds, gap).await);
            }
            churn::table(&rows)
        }
        Command::Crash(options) => {
            eprintln!("rollcall-bench: churn through a Redis kill, {options:?}…");
            let mut settings: Vec<(&str, &str)> = super::NO_RATE_LIMITS.to_vec();
            // The watchers' leases must outlive the outage (the default 90 s
            // does; this keeps it so whatever the default becomes).
            settings.push(("ROLLCALL_LEASE_SECS", "90"));
            crash::table(&[crash::measure(node, &settings, *options).await])
        }
        Command::Cloud {
            watchers,
            rounds,
            online,
            stores,
        } => {
            let mut rows = Vec::new();
            for &store in stores {
                for &w in watchers {
                    eprintln!(
                        "rollcall-bench: cloud path on {} with {w} watchers…",
                        store.name()
                    );
                    rows.push(cloud::measure(store, w, *rounds, *online).await);
                }
            }
            cloud::table(&rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse_and_bad_ones_are_refused() {
        let Command::Fanout {
            observers,
            rounds,
            scenarios,
        } = parse(&args("--observers 10,20 --rounds 3 --scenarios redis")).unwrap()
        else {
            panic!("fanout")
        };
        assert_eq!(
            (observers, rounds, scenarios),
            (vec![10, 20], 3, vec![Scenario::Redis])
        );
        assert!(
            matches!(parse(&[]).unwrap(), Command::Fanout { scenarios, .. } if scenarios.len() == 3)
        );
        assert!(matches!(
            parse(&args("users --registered 5,6 --online 2")).unwrap(),
            Command::Users { registered, online: 2, .. } if registered == [5, 6]
        ));
        assert!(matches!(
            parse(&args("churn --grace 0.5 --gap-ms 100")).unwrap(),
            Command::Churn { gap_ms: 100, .. }
        ));
        assert!(matches!(
            parse(&args("churn --observers 7 --kill-redis --down-ms 500")).unwrap(),
            Command::Crash(o) if o.watchers == 7 && o.down == Duration::from_millis(500)
        ));
        for bad in [
            "--rounds",
            "--rounds 0",
            "--observers 1,x",
            "--scenarios disk",
            "--fast 1",
            "users --rounds 3",
            "churn --grace x",
            "churn --kill-redis --fsync no",
            "churn --kill-redis --grace 1",
            "cloud --stores disk",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
