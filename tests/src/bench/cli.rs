//! `rollcall-bench [--observers 1000,10000] [--rounds 20] [--scenarios memory,redis,redis-2-nodes]`

use std::process::ExitCode;

use super::{Scenario, measure, table};

const USAGE: &str = "usage: rollcall-bench [--observers N,N..] [--rounds N] [--scenarios memory,redis,redis-2-nodes]";

struct Options {
    observers: Vec<usize>,
    rounds: usize,
    scenarios: Vec<Scenario>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        observers: vec![1000, 10_000],
        rounds: 20,
        scenarios: Scenario::ALL.to_vec(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |s: &str| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: {s:?} is not a positive number"))
        };
        match flag.as_str() {
            "--observers" => {
                o.observers = value.split(',').map(number).collect::<Result<_, _>>()?
            }
            "--rounds" => o.rounds = number(value)?,
            "--scenarios" => {
                o.scenarios = value
                    .split(',')
                    .map(|s| {
                        Scenario::parse(s).ok_or_else(|| format!("unknown scenario {s:?}\n{USAGE}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// Runs the bench with the process's arguments; the server binary is the
/// `rollcall-node` next to this executable.
pub async fn run() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rollcall-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let node = match std::env::current_exe() {
        Ok(me) => me.with_file_name("rollcall-node"),
        Err(e) => {
            eprintln!("rollcall-bench: cannot find my own path: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !node.exists() {
        eprintln!(
            "rollcall-bench: {} is missing (cargo build --release -p rollcall-tests --bins)",
            node.display()
        );
        return ExitCode::FAILURE;
    }
    let mut rows = Vec::new();
    for &scenario in &options.scenarios {
        for &n in &options.observers {
            eprintln!("rollcall-bench: {} with {n} observers…", scenario.name());
            rows.push(measure(&node, scenario, n, options.rounds).await);
        }
    }
    print!("{}", table(&rows));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse_and_bad_ones_are_refused() {
        let o = parse(&args("--observers 10,20 --rounds 3 --scenarios redis")).unwrap();
        assert_eq!(o.observers, [10, 20]);
        assert_eq!(o.rounds, 3);
        assert_eq!(o.scenarios, [Scenario::Redis]);
        assert_eq!(parse(&[]).unwrap().scenarios.len(), 3);
        for bad in [
            "--rounds",
            "--rounds 0",
            "--observers 1,x",
            "--scenarios disk",
            "--fast 1",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
