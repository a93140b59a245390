//! The bank workload (Jepsen's `bank`): a fixed set of accounts holding a
//! known total; clients transfer random amounts between random accounts and
//! read every balance at once. Money is neither made nor destroyed, so every
//! read must sum to the total; unless negative balances are allowed, none
//! may be negative. The `bank` checker judges it.
//!
//! The accounts are created first, in a phase of their own, by one
//! transaction that sets each account only if it does not exist yet (`cas`
//! from nil), so a retried creation can never reset balances that transfers
//! have since moved. A transfer is `{from, to, amount}` (the target moves
//! the money atomically, or fails); a read's value names the accounts it
//! reads and returns a map of account to balance.

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

use crate::opts::{at_least, probability};

/// Transfers between accounts, and reads of every balance.
#[derive(Clone, Debug)]
pub struct Bank {
    /// Number of accounts (`0..accounts`).
    pub accounts: i64,
    /// The money in all accounts together.
    pub total: i64,
    /// The largest amount one transfer moves.
    pub max_transfer: i64,
    /// Whether balances may go below zero.
    pub negative_balances: bool,
    /// Probability that an operation is a read.
    pub read_ratio: f64,
}

impl Bank {
    /// Reads `options.accounts` (default 8), `total` (100), `max_transfer`
    /// (5), `negative_balances` (false) and `read_ratio` (0.5).
    pub fn from_spec(spec: &TestSpec) -> Result<Bank> {
        let accounts = at_least(spec, "accounts", 8, 2)?;
        Ok(Bank {
            accounts,
            total: at_least(spec, "total", 100, 0)?,
            max_transfer: at_least(spec, "max_transfer", 5, 1)?,
            negative_balances: spec.option("negative_balances", false)?,
            read_ratio: probability(spec, "read_ratio", 0.5)?,
        })
    }

    /// Each account's opening balance: the total shared evenly, the
    /// remainder to account 0.
    fn opening(&self) -> Vec<i64> {
        let share = self.total / self.accounts;
        (0..self.accounts)
            .map(|a| if a == 0 { share + self.total % self.accounts } else { share })
            .collect()
    }

    fn account_list(&self) -> Value {
        Value::list((0..self.accounts).map(Value::from))
    }
}

impl Workload for Bank {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let create = Value::list(self.opening().into_iter().enumerate().map(|(a, balance)| {
            Value::list([
                Value::str("cas"),
                (a as i64).into(),
                Value::list([Value::Nil, balance.into()]),
            ])
        }));
        let open = g::from_fn(move |_, _| Some(Invocation::new("txn", create.clone())));
        let bank = self.clone();
        let accounts = self.account_list();
        let work = g::from_fn(move |rng, _ctx| {
            if rng.random_bool(bank.read_ratio) {
                return Some(Invocation::new("read", accounts.clone()));
            }
            let from = rng.random_range(0..bank.accounts);
            // Another account: skip `from` by shifting the upper part.
            let mut to = rng.random_range(0..bank.accounts - 1);
            if to >= from {
                to += 1;
            }
            let mut fields = vec![
                (Value::str("from"), from.into()),
                (Value::str("to"), to.into()),
                (Value::str("amount"), rng.random_range(1..=bank.max_transfer).into()),
            ];
            if bank.negative_balances {
                fields.push((Value::str("negative"), Value::Bool(true)));
            }
            Some(Invocation::new("transfer", Value::map(fields)))
        });
        let open = g::until_ok(g::delay(std::time::Duration::from_millis(100), open));
        g::phases(vec![open, work])
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        // Every thread (threads are spread over the nodes) reads every
        // balance once the faults have healed.
        let accounts = self.account_list();
        let read = g::from_fn(move |_, _| Some(Invocation::new("read", accounts.clone())));
        Some(g::each_thread(g::until_ok(g::delay(std::time::Duration::from_millis(100), read))))
    }

    fn fs(&self) -> Vec<String> {
        ["txn", "transfer", "read"].map(String::from).to_vec()
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        let mut c = CheckSpec { checker: "bank".into(), ..CheckSpec::default() };
        c.options.insert("total".into(), self.total.to_string());
        let accounts: Vec<String> = (0..self.accounts).map(|a| a.to_string()).collect();
        c.options.insert("accounts".into(), accounts.join(","));
        c.options.insert("negative-balances".into(), self.negative_balances.to_string());
        vec![c]
    }
}
