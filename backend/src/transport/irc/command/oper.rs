//! Server administration from IRC: OPER (a check, not a second login: an
//! account that is a server administrator is one once logged in; OPER
//! checks its password and says so),
//! KILL, KLINE, UNKLINE and STATS K. Each becomes the JSON protocol's
//! administrators' request; the session refuses anyone else (481).

use std::collections::VecDeque;

use banter_protocol::{ClientMessage, Nick};

use super::super::Client;
use super::super::asked::Asked;
use super::super::line::Line;
use super::super::numeric::*;
use crate::session::{Inbound, Verify};

/// A K-line's target as IRC writes it: `$a:account`, `user@host` (the
/// host counts), or an address or CIDR range.
fn kline_target(mask: &str) -> Result<(Option<String>, Option<Nick>), String> {
    if let Some(account) = mask.strip_prefix("$a:") {
        return Nick::new(account)
            .map(|a| (None, Some(a)))
            .map_err(|e| e.to_string());
    }
    let host = mask.rsplit_once('@').map_or(mask, |(_, host)| host);
    Ok((Some(host.to_string()), None))
}

impl Client {
    /// OPER, KILL, KLINE, UNKLINE, STATS.
    pub(super) fn oper_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        match line.command.as_str() {
            // `OPER name password`: the password is checked as a login
            // would check it (464 if wrong); an administrator's account
            // gives this connection its rights (381), another none (491).
            "OPER" => {
                let Ok(account) = Nick::new(&line.params[0]) else {
                    return self.numeric(queue, ERR_PASSWDMISMATCH, &["Password incorrect"]);
                };
                queue.push_back(Inbound::Verify(Box::new(Verify {
                    account,
                    password: line.params[1].clone(),
                    reference: Some(self.asked.ask(Asked::Oper)),
                    oper: true,
                })));
            }
            "KILL" => match Nick::new(&line.params[0]) {
                Ok(nick) => {
                    let reason = line.param(1).map(str::to_string);
                    self.request(
                        queue,
                        ClientMessage::Kill { nick, reason },
                        Asked::Admin("KILL"),
                    );
                }
                Err(_) => {
                    let nick = line.params[0].clone();
                    self.numeric(queue, ERR_NOSUCHNICK, &[&nick, "No such nick/channel"]);
                }
            },
            "KLINE" => {
                // KLINE [minutes] mask :reason
                let (minutes, rest) = match line.params[0].parse::<u32>() {
                    Ok(m) if line.params.len() >= 3 => (Some(m).filter(|&m| m > 0), 1),
                    _ => (None, 0),
                };
                let (Some(mask), Some(reason)) = (line.param(rest), line.param(rest + 1)) else {
                    return self.numeric(
                        queue,
                        ERR_NEEDMOREPARAMS,
                        &["KLINE", "Not enough parameters"],
                    );
                };
                match kline_target(mask) {
                    Ok((address, account)) => {
                        let body = ClientMessage::Kline {
                            address,
                            account,
                            reason: reason.to_string(),
                            minutes,
                        };
                        self.request(queue, body, Asked::Admin("KLINE"));
                    }
                    Err(e) => self.numeric(queue, ERR_UNKNOWNERROR, &["KLINE", &e]),
                }
            }
            "UNKLINE" => match kline_target(&line.params[0]) {
                Ok((address, account)) => {
                    let body = ClientMessage::Unkline { address, account };
                    self.request(queue, body, Asked::Admin("UNKLINE"));
                }
                Err(e) => self.numeric(queue, ERR_UNKNOWNERROR, &["UNKLINE", &e]),
            },
            // STATS: only K (server bans) has anything to say.
            _ => match line.param(0) {
                Some("k" | "K") => {
                    self.request(queue, ClientMessage::Klines, Asked::Admin("STATS"))
                }
                letter => {
                    let letter = letter.unwrap_or("*").to_string();
                    self.numeric(queue, RPL_ENDOFSTATS, &[&letter, "End of /STATS report"]);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kline_targets_are_accounts_hosts_or_ranges() {
        let account = kline_target("$a:Mallory").unwrap();
        assert_eq!(account, (None, Some(Nick::new("Mallory").unwrap())));
        assert_eq!(
            kline_target("*@192.0.2.1").unwrap().0.as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            kline_target("10.0.0.0/8").unwrap().0.as_deref(),
            Some("10.0.0.0/8")
        );
        assert!(kline_target("$a:no spaces").is_err());
    }
}
