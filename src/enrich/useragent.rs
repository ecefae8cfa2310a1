//! User-agent parsing with woothee, behind a bounded shard-local cache.
//!
//! The original used uadetector, whose database froze in 2014. woothee is
//! maintained and fast; its answers are translated into the original's
//! vocabulary (`Personal computer`, `OS X`, `Google Inc.` ...) so existing
//! reports keep working. `docs/compatibility.md` lists the translation.
//!
//! Every agent also gets a bot verdict: woothee's crawler category, or a
//! match in the `isbot` crate's pattern list (which follows the public
//! crawler lists and names headless browsers such as `HeadlessChrome`).

use hashbrown::HashTable;

/// The nine user-agent fields of the default schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    /// Browser or robot name (`Chrome`).
    pub name: Box<str>,
    /// Family (`Chrome`, `IE`).
    pub family: Box<str>,
    /// Producer (`Google Inc.`).
    pub vendor: Box<str>,
    /// Kind of client (`Browser`, `Mobile Browser`, `Robot`, ...).
    pub kind: Box<str>,
    /// Version (`38.0.2125.122`); empty when unknown.
    pub version: Box<str>,
    /// Device category (`Personal computer`, `Smartphone`, `Tablet`, ...).
    pub device_category: Box<str>,
    /// Operating system family (`OS X`, `Windows`, `iOS`, ...).
    pub os_family: Box<str>,
    /// Operating system version; empty when unknown.
    pub os_version: Box<str>,
    /// Operating system producer (`Apple Computer, Inc.`).
    pub os_vendor: Box<str>,
    /// A crawler, a bot or a headless browser.
    pub bot: bool,
    /// The nine fields in the form a later stage writes them, kept there
    /// the first time it writes this agent, so that each later event with
    /// it copies them at once. The default mapping keeps its Avro strings
    /// here: one copy instead of nine strings and their lengths.
    pub written: Memo,
}

/// A value derived from the rest of a [`UserAgent`], filled on first use
/// (the agent lives in one shard's cache). Two agents are equal whatever
/// their memos hold.
#[derive(Debug, Clone, Default)]
pub struct Memo(pub std::cell::OnceCell<Box<[u8]>>);

impl PartialEq for Memo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Memo {}

const UNKNOWN: &str = "UNKNOWN";

fn known(v: &str) -> &str {
    if v == UNKNOWN {
        ""
    } else {
        v
    }
}

/// What parses user agents: woothee and the bot patterns. Each shard has
/// its own, so the patterns' regex keeps its match state without sharing.
pub struct UserAgentParser {
    woothee: woothee::parser::Parser,
    bots: isbot::Bots,
}

impl Default for UserAgentParser {
    fn default() -> Self {
        Self { woothee: woothee::parser::Parser::new(), bots: isbot::Bots::default() }
    }
}

impl UserAgentParser {
    /// Parses a user agent without the cache.
    pub fn parse(&self, agent: &str) -> UserAgent {
        // Not `unwrap_or_default`: the derived default has empty names, `new()`
        // has woothee's UNKNOWN markers, which the translation below relies on.
        let r = match self.woothee.parse(agent) {
            Some(r) => r,
            None => woothee::parser::WootheeResult::new(),
        };
        let bot = r.category == "crawler" || self.bots.is_bot(agent);
        let family = match r.name {
            "Internet Explorer" => "IE",
            UNKNOWN => "unknown",
            n => n,
        };
        let vendor = match r.vendor {
            "Google" => "Google Inc.",
            "Mozilla" => "Mozilla Foundation",
            "Apple" => "Apple Inc.",
            "Microsoft" => "Microsoft Corporation.",
            "Opera" => "Opera Software ASA.",
            v => known(v),
        };
        let os_family = match r.os {
            "Mac OSX" => "OS X",
            "Mac OS Classic" => "Mac OS",
            "iPhone" | "iPad" | "iPod" => "iOS",
            "ChromeOS" => "Chrome OS",
            "BlackBerry" | "BlackBerry 10" => "BlackBerry OS",
            "Windows Phone OS" => "Windows Phone",
            w if w.starts_with("Windows") => "Windows",
            UNKNOWN => "Unknown",
            other => other,
        };
        let os_vendor = match os_family {
            "Windows" | "Windows Phone" => "Microsoft Corporation.",
            "OS X" | "Mac OS" | "iOS" => "Apple Computer, Inc.",
            "Android" | "Chrome OS" => "Google, Inc.",
            "BlackBerry OS" => "Research In Motion Limited",
            "Unknown" => "unknown",
            _ => "",
        };
        let device_category = match (r.category, r.os) {
            ("smartphone", "iPad") => "Tablet",
            ("pc", _) => "Personal computer",
            ("smartphone", _) => "Smartphone",
            ("appliance", "InternetTVBrowser") => "Smart TV",
            ("appliance", _) => "Game console",
            ("mobilephone" | "crawler" | "misc", _) => "Other",
            _ => "Unknown",
        };
        let kind = match (r.category, r.name) {
            ("crawler", _) => "Robot",
            (_, "HTTP Library" | "Indy Library") => "Library",
            (_, "RSSReader" | "Safari RSSReader" | "Windows RSSReader") => "Feed reader",
            ("smartphone" | "mobilephone", _) => "Mobile Browser",
            ("pc", _) => "Browser",
            ("appliance" | "misc", _) => "Other",
            _ => "unknown",
        };
        UserAgent {
            name: r.name.replace(UNKNOWN, "unknown").into(),
            family: family.into(),
            vendor: vendor.into(),
            kind: kind.into(),
            version: known(r.version).into(),
            device_category: device_category.into(),
            os_family: os_family.into(),
            os_version: known(&r.os_version).into(),
            os_vendor: os_vendor.into(),
            bot,
            written: Memo::default(),
        }
    }
}

/// Parsed user agents of one shard, bounded to `capacity` entries.
///
/// Two generations: new entries go into `current`; when it holds half the
/// capacity, it becomes `previous` and the old `previous` is dropped. A hit
/// in `previous` moves the entry forward. Busy agents stay cached, a flood
/// of distinct agents costs at most `capacity` entries, and no per-entry
/// bookkeeping is needed on hits.
pub struct UserAgentCache {
    parser: UserAgentParser,
    generation_size: usize,
    hasher: ahash::RandomState,
    /// `(agent, parsed)` by the agent's hash, computed once per lookup.
    current: HashTable<(Box<str>, UserAgent)>,
    previous: HashTable<(Box<str>, UserAgent)>,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to parse.
    pub misses: u64,
}

impl UserAgentCache {
    /// A cache holding at most `capacity` (at least 2) parsed agents.
    pub fn new(capacity: usize) -> Self {
        let generation_size = (capacity / 2).max(1);
        Self {
            parser: UserAgentParser::default(),
            generation_size,
            hasher: ahash::RandomState::new(),
            current: HashTable::with_capacity(generation_size),
            previous: HashTable::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// Entries currently held.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parsed form of `agent`. A hit hashes the agent once.
    pub fn get(&mut self, agent: &str) -> &UserAgent {
        let hash = self.hasher.hash_one(agent);
        let same = |e: &(Box<str>, UserAgent)| &*e.0 == agent;
        let rehash = |e: &(Box<str>, UserAgent)| self.hasher.hash_one(&*e.0);
        let current = match self.current.find_entry(hash, same) {
            Ok(hit) => {
                self.hits += 1;
                return &hit.into_mut().1;
            }
            Err(absent) => absent.into_table(),
        };
        let parsed = match self.previous.find_entry(hash, same) {
            Ok(moved) => {
                self.hits += 1;
                moved.remove().0 .1
            }
            Err(_) => {
                self.misses += 1;
                self.parser.parse(agent)
            }
        };
        if current.len() >= self.generation_size {
            self.previous = std::mem::replace(current, HashTable::with_capacity(self.generation_size));
        }
        &current.insert_unique(hash, (agent.into(), parsed), rehash).into_mut().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/38.0.2125.122 Safari/537.36";

    #[test]
    fn translates_into_the_original_vocabulary() {
        let ua = UserAgentParser::default().parse(CHROME_MAC);
        assert_eq!(&*ua.name, "Chrome");
        assert_eq!(&*ua.family, "Chrome");
        assert_eq!(&*ua.vendor, "Google Inc.");
        assert_eq!(&*ua.kind, "Browser");
        assert_eq!(&*ua.version, "38.0.2125.122");
        assert_eq!(&*ua.device_category, "Personal computer");
        assert_eq!(&*ua.os_family, "OS X");
        assert_eq!(&*ua.os_version, "10.10.1");
        assert_eq!(&*ua.os_vendor, "Apple Computer, Inc.");
        assert!(!ua.bot);
    }

    #[test]
    fn classifies_phones_tablets_and_robots() {
        let p = UserAgentParser::default();
        let iphone = p.parse("Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1");
        assert_eq!(
            (&*iphone.device_category, &*iphone.os_family, &*iphone.kind),
            ("Smartphone", "iOS", "Mobile Browser")
        );
        let ipad = p.parse("Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 Mobile/15E148 Safari/604.1");
        assert_eq!(&*ipad.device_category, "Tablet");
        let bot = p.parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(&*bot.kind, "Robot");
        assert!(bot.bot);
        assert!(!iphone.bot && !ipad.bot);
        let junk = p.parse("definitely not a browser");
        assert_eq!((&*junk.name, &*junk.device_category, &*junk.version), ("unknown", "Unknown", ""));
    }

    #[test]
    fn bots_that_woothee_calls_browsers_are_flagged_from_the_pattern_list() {
        let p = UserAgentParser::default();
        let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
        let ua = p.parse(headless);
        assert_eq!(&*ua.kind, "Browser", "woothee sees a browser");
        assert!(ua.bot, "the pattern list knows HeadlessChrome");
        assert!(p.parse("python-requests/2.31.0").bot);
        assert!(p.parse("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)").bot);
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert!(!p.parse(chrome).bot);
    }

    #[test]
    fn cache_stays_bounded_under_a_flood_of_distinct_agents() {
        let mut cache = UserAgentCache::new(100);
        for i in 0..10_000 {
            cache.get(&format!("{CHROME_MAC} flood/{i}"));
            assert!(cache.len() <= 100, "cache grew to {}", cache.len());
        }
        assert_eq!(cache.misses, 10_000);
    }

    #[test]
    fn cache_keeps_busy_agents() {
        let mut cache = UserAgentCache::new(10);
        cache.get(CHROME_MAC);
        for i in 0..1000 {
            cache.get(&format!("other/{i}"));
            cache.get(CHROME_MAC);
        }
        assert_eq!(cache.misses, 1001, "the busy agent was parsed once");
        assert_eq!(&*cache.get(CHROME_MAC).name, "Chrome");
    }
}
