//! IRC numeric replies by name, the server's identity, and small helpers
//! that every reply uses: user masks, `server-time` timestamps, and lines
//! from the server to the client.

use super::line::Line;
pub use crate::core::model::MASK_HOST;

/// Set by [`set_server_name`]; `banter` until then.
static SERVER_NAME: std::sync::RwLock<Option<&'static str>> = std::sync::RwLock::new(None);

/// Names the server (`--server-name`) for every IRC line it sends from
/// now on. One name per process: a server sets it as it starts.
pub fn set_server_name(name: &str) {
    let mut current = SERVER_NAME.write().unwrap();
    if *current != Some(name) {
        // Leaked once per distinct name: a process sets one, tests a few.
        *current = Some(Box::leak(name.to_string().into_boxed_str()));
    }
}

/// The server's name: the source of its numerics and notices, and what
/// PONG answers.
pub fn server() -> &'static str {
    SERVER_NAME.read().unwrap().unwrap_or("banter")
}
pub const NETWORK: &str = "Banter";

pub const RPL_WELCOME: &str = "001";
pub const RPL_YOURHOST: &str = "002";
pub const RPL_CREATED: &str = "003";
pub const RPL_MYINFO: &str = "004";
pub const RPL_ISUPPORT: &str = "005";
pub const RPL_UMODEIS: &str = "221";
pub const RPL_AWAY: &str = "301";
pub const RPL_USERHOST: &str = "302";
pub const RPL_ISON: &str = "303";
pub const RPL_UNAWAY: &str = "305";
pub const RPL_NOWAWAY: &str = "306";
pub const RPL_WHOISUSER: &str = "311";
pub const RPL_WHOISSERVER: &str = "312";
pub const RPL_WHOSPCRPL: &str = "354";
pub const RPL_CREATIONTIME: &str = "329";
pub const ERR_INVALIDMODEPARAM: &str = "696";
pub const RPL_MONONLINE: &str = "730";
pub const RPL_MONOFFLINE: &str = "731";
pub const RPL_MONLIST: &str = "732";
pub const RPL_ENDOFMONLIST: &str = "733";
pub const ERR_MONLISTFULL: &str = "734";
pub const RPL_WHOISBOT: &str = "335";
pub const RPL_WHOISOPERATOR: &str = "313";
pub const RPL_ENDOFWHO: &str = "315";
pub const RPL_WHOISIDLE: &str = "317";
pub const RPL_ENDOFWHOIS: &str = "318";
pub const RPL_WHOISCHANNELS: &str = "319";
pub const RPL_LISTSTART: &str = "321";
pub const RPL_LIST: &str = "322";
pub const RPL_LISTEND: &str = "323";
pub const RPL_CHANNELMODEIS: &str = "324";
pub const RPL_WHOISACCOUNT: &str = "330";
pub const RPL_NOTOPIC: &str = "331";
pub const RPL_TOPIC: &str = "332";
pub const RPL_TOPICWHOTIME: &str = "333";
pub const RPL_VERSION: &str = "351";
pub const RPL_TIME: &str = "391";
pub const RPL_LUSERCLIENT: &str = "251";
pub const RPL_LUSEROP: &str = "252";
pub const RPL_LUSERUNKNOWN: &str = "253";
pub const RPL_LUSERCHANNELS: &str = "254";
pub const RPL_LUSERME: &str = "255";
pub const RPL_LOCALUSERS: &str = "265";
pub const RPL_GLOBALUSERS: &str = "266";
pub const RPL_ADMINME: &str = "256";
pub const RPL_ADMINLOC1: &str = "257";
pub const RPL_ADMINLOC2: &str = "258";
pub const RPL_ADMINEMAIL: &str = "259";
pub const RPL_INFO: &str = "371";
pub const RPL_ENDOFINFO: &str = "374";
pub const RPL_ENDOFWHOWAS: &str = "369";
pub const ERR_WASNOSUCHNICK: &str = "406";
pub const RPL_WHOREPLY: &str = "352";
pub const RPL_NAMREPLY: &str = "353";
pub const RPL_ENDOFNAMES: &str = "366";
pub const RPL_ENDOFBANLIST: &str = "368";
pub const RPL_ENDOFEXCEPTLIST: &str = "349";
pub const RPL_ENDOFINVITELIST: &str = "347";
pub const RPL_MOTD: &str = "372";
pub const RPL_MOTDSTART: &str = "375";
pub const RPL_ENDOFMOTD: &str = "376";
pub const ERR_UNKNOWNERROR: &str = "400";
pub const ERR_NOSUCHNICK: &str = "401";
pub const ERR_NOSUCHCHANNEL: &str = "403";
pub const ERR_CANNOTSENDTOCHAN: &str = "404";
pub const ERR_TOOMANYCHANNELS: &str = "405";
pub const ERR_TOOMANYTARGETS: &str = "407";
pub const ERR_NOORIGIN: &str = "409";
pub const ERR_INVALIDCAPCMD: &str = "410";
pub const ERR_NORECIPIENT: &str = "411";
pub const ERR_NOTEXTTOSEND: &str = "412";
pub const ERR_INPUTTOOLONG: &str = "417";
pub const ERR_UNKNOWNCOMMAND: &str = "421";
pub const ERR_NONICKNAMEGIVEN: &str = "431";
pub const ERR_ERRONEUSNICKNAME: &str = "432";
pub const ERR_NICKNAMEINUSE: &str = "433";
pub const ERR_NOTONCHANNEL: &str = "442";
pub const ERR_NOTREGISTERED: &str = "451";
pub const ERR_NEEDMOREPARAMS: &str = "461";
pub const ERR_ALREADYREGISTERED: &str = "462";
pub const ERR_BADCHANNAME: &str = "479";
pub const ERR_CHANOPRIVSNEEDED: &str = "482";
pub const ERR_BANNEDFROMCHAN: &str = "474";
pub const ERR_PASSWDMISMATCH: &str = "464";
pub const ERR_USERNOTINCHANNEL: &str = "441";
pub const ERR_UNKNOWNMODE: &str = "472";
pub const ERR_CHANNELISFULL: &str = "471";
pub const ERR_INVITEONLYCHAN: &str = "473";
pub const ERR_BADCHANNELKEY: &str = "475";
pub const ERR_NEEDREGGEDNICK: &str = "477";
pub const ERR_USERONCHANNEL: &str = "443";
pub const RPL_INVITING: &str = "341";
pub const RPL_BANLIST: &str = "367";
pub const RPL_EXCEPTLIST: &str = "348";
pub const RPL_INVITELIST: &str = "346";
pub const ERR_BANLISTFULL: &str = "478";
pub const RPL_STATSKLINE: &str = "216";
pub const RPL_YOUREOPER: &str = "381";
pub const ERR_NOPRIVILEGES: &str = "481";
pub const ERR_YOUREBANNEDCREEP: &str = "465";
pub const ERR_NOOPERHOST: &str = "491";
pub const RPL_ENDOFSTATS: &str = "219";
pub const RPL_LOGGEDIN: &str = "900";
pub const RPL_LOGGEDOUT: &str = "901";
pub const RPL_SASLSUCCESS: &str = "903";
pub const ERR_SASLFAIL: &str = "904";
pub const ERR_SASLABORTED: &str = "906";
pub const RPL_SASLMECHS: &str = "908";
pub const ERR_UMODEUNKNOWNFLAG: &str = "501";
pub const ERR_USERSDONTMATCH: &str = "502";

/// `nick!nick@banter`: every user looks the same whatever its transport
/// (a cloak: no address is ever shown; see `MASK_HOST`).
pub fn mask(nick: &str) -> String {
    format!("{nick}!{nick}@{MASK_HOST}")
}

/// Writes `:banter <code> <me> <params…>`, the last parameter as text.
pub fn reply(out: &mut Vec<u8>, code: &str, me: &str, params: &[&str]) {
    let mut line = Line::new(Some(server()), code, &[me]);
    line.params.extend(params.iter().map(|p| p.to_string()));
    line.text().write(out);
}

/// A NOTICE from the server to the client.
pub fn notice(out: &mut Vec<u8>, me: &str, text: &str) {
    Line::new(Some(server()), "NOTICE", &[me, text])
        .text()
        .write(out);
}

/// Unix milliseconds as `server-time` wants them: `2025-11-22T14:20:00.123Z`.
pub fn iso_time(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_763_823_600_123), "2025-11-22T15:00:00.123Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn replies_come_from_the_server() {
        let mut out = Vec::new();
        reply(
            &mut out,
            ERR_UNKNOWNCOMMAND,
            "alice",
            &["FOO", "Unknown command"],
        );
        assert_eq!(out, b":banter 421 alice FOO :Unknown command\r\n");
    }
}
