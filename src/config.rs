//! Typed configuration (DESIGN §2): defaults < `switchboard.toml` <
//! `SWITCHBOARD_*` environment variables < command-line flags.
//!
//! Every setting has one name in three spellings: the flag `--sip-listen`,
//! the environment variable `SWITCHBOARD_SIP_LISTEN` and the file key
//! `sip_listen`. Values are collected as text from each layer, the highest
//! layer wins per setting, and the winner is parsed once, so an error names
//! the setting and where its value came from.

use crate::sip::registrar::digest::DigestAlgorithm;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Args;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "switchboard.toml";

/// One configurable setting of DESIGN §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Setting {
    SipListen,
    PublicIp,
    Domain,
    RtpPorts,
    HttpListen,
    DatabaseUrl,
    Flows,
    Sounds,
    Recordings,
    AdminToken,
    TrustedPeers,
    DigestAlgorithms,
    MediaNice,
}

impl Setting {
    /// Every setting, in the order of the DESIGN §2 table.
    pub const ALL: [Setting; 13] = [
        Setting::SipListen,
        Setting::PublicIp,
        Setting::Domain,
        Setting::RtpPorts,
        Setting::HttpListen,
        Setting::DatabaseUrl,
        Setting::Flows,
        Setting::Sounds,
        Setting::Recordings,
        Setting::AdminToken,
        Setting::TrustedPeers,
        Setting::DigestAlgorithms,
        Setting::MediaNice,
    ];

    /// The `switchboard.toml` key (snake_case).
    pub fn key(self) -> &'static str {
        match self {
            Setting::SipListen => "sip_listen",
            Setting::PublicIp => "public_ip",
            Setting::Domain => "domain",
            Setting::RtpPorts => "rtp_ports",
            Setting::HttpListen => "http_listen",
            Setting::DatabaseUrl => "database_url",
            Setting::Flows => "flows",
            Setting::Sounds => "sounds",
            Setting::Recordings => "recordings",
            Setting::AdminToken => "admin_token",
            Setting::TrustedPeers => "trusted_peers",
            Setting::DigestAlgorithms => "digest_algorithms",
            Setting::MediaNice => "media_nice",
        }
    }

    /// The command-line flag, `--sip-listen`.
    pub fn flag(self) -> String {
        format!("--{}", self.key().replace('_', "-"))
    }

    /// The environment variable, `SWITCHBOARD_SIP_LISTEN`.
    pub fn env(self) -> String {
        format!("SWITCHBOARD_{}", self.key().to_ascii_uppercase())
    }

    /// The default value as text; `None` for settings that are derived or
    /// absent by default.
    fn default_text(self) -> Option<&'static str> {
        match self {
            Setting::SipListen => Some("0.0.0.0:5060"),
            Setting::RtpPorts => Some("20000-29999"),
            Setting::HttpListen => Some("127.0.0.1:8080"),
            Setting::DatabaseUrl => Some("sqlite://switchboard.db"),
            Setting::Flows => Some("ivr-flows"),
            Setting::Sounds => Some("sounds"),
            Setting::Recordings => Some("recordings"),
            Setting::DigestAlgorithms => Some("SHA-256,MD5"),
            Setting::MediaNice => Some("-10"),
            Setting::PublicIp | Setting::Domain | Setting::AdminToken | Setting::TrustedPeers => {
                None
            }
        }
    }

    fn from_key(key: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// Where a setting's value came from; named in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env,
    Flag,
}

/// A setting together with the layer its value came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub setting: Setting,
    pub source: Source,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Default => write!(f, "{} (default)", self.setting.key()),
            Source::File(path) => write!(
                f,
                "{} (key `{}` in {})",
                self.setting.key(),
                self.setting.key(),
                path.display()
            ),
            Source::Env => write!(
                f,
                "{} (environment variable {})",
                self.setting.key(),
                self.setting.env()
            ),
            Source::Flag => write!(f, "{} (flag {})", self.setting.key(), self.setting.flag()),
        }
    }
}

/// Errors while assembling the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {origin}: {reason}")]
    Invalid {
        origin: Origin,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {source}", path.display())]
    ParseFile {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("config file {}: unknown key `{key}` (known keys: {known})", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        known: String,
    },
    #[error("config file {}: key `{key}` must be {expected}", path.display())]
    KeyType {
        path: PathBuf,
        key: String,
        expected: &'static str,
    },
}

/// The settings flags, shared by every subcommand (`global`), so `agent`,
/// `db` and `check` read the same settings as `serve`.
///
/// Values stay text here; [`Config::load`] merges them with the file and the
/// environment and parses the winner.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// Configuration file [env: SWITCHBOARD_CONFIG] [default: ./switchboard.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SIP over UDP and TCP on this address [env: SWITCHBOARD_SIP_LISTEN] [default: 0.0.0.0:5060]
    #[arg(long, global = true, value_name = "ADDR")]
    pub sip_listen: Option<String>,
    /// Address written into Contact, Via and SDP [env: SWITCHBOARD_PUBLIC_IP] [default: derived]
    #[arg(long, global = true, value_name = "IP")]
    pub public_ip: Option<String>,
    /// SIP domain agents register in [env: SWITCHBOARD_DOMAIN] [default: the public IP]
    #[arg(long, global = true, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// RTP port range, even start [env: SWITCHBOARD_RTP_PORTS] [default: 20000-29999]
    #[arg(long, global = true, value_name = "A-B")]
    pub rtp_ports: Option<String>,
    /// HTTP API, events and /metrics [env: SWITCHBOARD_HTTP_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, global = true, value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// sqlite://FILE or postgres://... [env: SWITCHBOARD_DATABASE_URL] [default: sqlite://switchboard.db]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Folder of flow, queue and hours files [env: SWITCHBOARD_FLOWS] [default: ivr-flows]
    #[arg(long, global = true, value_name = "DIR")]
    pub flows: Option<String>,
    /// Folder that prompt names resolve in [env: SWITCHBOARD_SOUNDS] [default: sounds]
    #[arg(long, global = true, value_name = "DIR")]
    pub sounds: Option<String>,
    /// Where recordings and voicemails are written [env: SWITCHBOARD_RECORDINGS] [default: recordings]
    #[arg(long, global = true, value_name = "DIR")]
    pub recordings: Option<String>,
    /// Bearer token for /api/v1 [env: SWITCHBOARD_ADMIN_TOKEN] [default: generated once and stored]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// CIDRs allowed to place calls without digest auth, comma-separated [env: SWITCHBOARD_TRUSTED_PEERS]
    #[arg(long, global = true, value_name = "CIDRS")]
    pub trusted_peers: Option<String>,
    /// Digest algorithms offered to phones, most preferred first [env: SWITCHBOARD_DIGEST_ALGORITHMS] [default: SHA-256,MD5]
    #[arg(long, global = true, value_name = "LIST")]
    pub digest_algorithms: Option<String>,
    /// Nice value of the media worker threads, -20..19; 0 leaves them at the process's [env: SWITCHBOARD_MEDIA_NICE] [default: -10]
    #[arg(long, global = true, value_name = "N", allow_hyphen_values = true)]
    pub media_nice: Option<String>,
}

impl SettingsArgs {
    /// The settings given as flags.
    pub fn flags(&self) -> Vec<(Setting, String)> {
        let pairs = [
            (Setting::SipListen, &self.sip_listen),
            (Setting::PublicIp, &self.public_ip),
            (Setting::Domain, &self.domain),
            (Setting::RtpPorts, &self.rtp_ports),
            (Setting::HttpListen, &self.http_listen),
            (Setting::DatabaseUrl, &self.database_url),
            (Setting::Flows, &self.flows),
            (Setting::Sounds, &self.sounds),
            (Setting::Recordings, &self.recordings),
            (Setting::AdminToken, &self.admin_token),
            (Setting::TrustedPeers, &self.trusted_peers),
            (Setting::DigestAlgorithms, &self.digest_algorithms),
            (Setting::MediaNice, &self.media_nice),
        ];
        pairs
            .into_iter()
            .filter_map(|(s, v)| v.clone().map(|v| (s, v)))
            .collect()
    }
}

/// The resolved, typed configuration of a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub sip_listen: SocketAddr,
    pub public_ip: IpAddr,
    pub domain: String,
    pub rtp_ports: PortRange,
    pub http_listen: SocketAddr,
    pub database_url: String,
    pub flows: PathBuf,
    pub sounds: PathBuf,
    pub recordings: PathBuf,
    pub admin_token: Option<String>,
    pub trusted_peers: CidrList,
    /// Digest algorithms the registrar offers, most preferred first
    /// (RFC 8760 §2.4).
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Nice value the media workers ask for (Linux); 0 leaves them at the
    /// process's priority. Below the process's own it needs
    /// `CAP_SYS_NICE` (or `RLIMIT_NICE`); without, they keep it.
    pub media_nice: i32,
}

impl Config {
    /// Loads the configuration the way the binary does: the file named by
    /// `--config` (or `SWITCHBOARD_CONFIG`), else `./switchboard.toml` if it
    /// exists; the process environment; the flags.
    pub fn load(args: &SettingsArgs) -> Result<Config, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let path = match (&args.config, env("SWITCHBOARD_CONFIG")) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(path)) if !path.is_empty() => Some(PathBuf::from(path)),
            _ => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                default.is_file().then_some(default)
            }
        };
        let file = match path {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => Some((path, text)),
                Err(source) => return Err(ConfigError::ReadFile { path, source }),
            },
            None => None,
        };
        let file_ref = file.as_ref().map(|(p, t)| (p.as_path(), t.as_str()));
        Config::from_sources(file_ref, env, &args.flags())
    }

    /// Merges the layers (file text, an environment lookup, flags) and
    /// parses the result. The lookup makes precedence testable without
    /// touching the process environment.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(Setting, String)],
    ) -> Result<Config, ConfigError> {
        let mut raw: HashMap<Setting, (String, Source)> = HashMap::new();
        if let Some((path, text)) = file {
            for (setting, value) in file_layer(path, text)? {
                raw.insert(setting, (value, Source::File(path.to_path_buf())));
            }
        }
        for setting in Setting::ALL {
            if let Some(value) = env(&setting.env()).filter(|v| !v.is_empty()) {
                raw.insert(setting, (value, Source::Env));
            }
        }
        for (setting, value) in flags {
            raw.insert(*setting, (value.clone(), Source::Flag));
        }
        Resolver { raw }.resolve()
    }

    /// A configuration for tests: every socket on `127.0.0.1:0`, the given
    /// database, folders relative to the working directory.
    pub fn loopback(database_url: &str) -> Config {
        let any_port = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Config {
            sip_listen: any_port,
            public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            domain: "127.0.0.1".to_owned(),
            rtp_ports: PortRange {
                start: 20000,
                end: 29999,
            },
            http_listen: any_port,
            database_url: database_url.to_owned(),
            flows: PathBuf::from("ivr-flows"),
            sounds: PathBuf::from("sounds"),
            recordings: PathBuf::from("recordings"),
            admin_token: None,
            trusted_peers: CidrList::default(),
            digest_algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            // Tests run beside each other: no priority games.
            media_nice: 0,
        }
    }
}

/// Reads `switchboard.toml`: a flat table of the setting keys. Strings
/// everywhere; `trusted_peers` may also be an array of strings and
/// `media_nice` an integer.
fn file_layer(path: &Path, text: &str) -> Result<Vec<(Setting, String)>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|source| ConfigError::ParseFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::with_capacity(table.len());
    for (key, value) in table {
        let Some(setting) = Setting::from_key(&key) else {
            let known: Vec<&str> = Setting::ALL.iter().map(|s| s.key()).collect();
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                key,
                known: known.join(", "),
            });
        };
        let text = match (setting, value) {
            (_, toml::Value::String(s)) => s,
            (Setting::MediaNice, toml::Value::Integer(n)) => n.to_string(),
            (Setting::TrustedPeers, toml::Value::Array(items)) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s),
                        _ => {
                            return Err(ConfigError::KeyType {
                                path: path.to_path_buf(),
                                key,
                                expected: "a string or an array of strings",
                            });
                        }
                    }
                }
                parts.join(",")
            }
            (Setting::TrustedPeers, _) => {
                return Err(ConfigError::KeyType {
                    path: path.to_path_buf(),
                    key,
                    expected: "a string or an array of strings",
                });
            }
            _ => {
                return Err(ConfigError::KeyType {
                    path: path.to_path_buf(),
                    key,
                    expected: "a string",
                });
            }
        };
        out.push((setting, text));
    }
    Ok(out)
}

struct Resolver {
    raw: HashMap<Setting, (String, Source)>,
}

impl Resolver {
    /// The winning text of a setting and its origin, or the default.
    fn text(&self, setting: Setting) -> Option<(String, Origin)> {
        match self.raw.get(&setting) {
            Some((value, source)) => Some((
                value.clone(),
                Origin {
                    setting,
                    source: source.clone(),
                },
            )),
            None => setting.default_text().map(|v| {
                (
                    v.to_owned(),
                    Origin {
                        setting,
                        source: Source::Default,
                    },
                )
            }),
        }
    }

    fn parse<T>(
        &self,
        setting: Setting,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.text(setting) {
            None => Ok(None),
            Some((value, origin)) => match parse(value.trim()) {
                Ok(v) => Ok(Some(v)),
                Err(reason) => Err(ConfigError::Invalid {
                    origin,
                    value,
                    reason,
                }),
            },
        }
    }

    fn required<T>(
        &self,
        setting: Setting,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.parse(setting, parse)? {
            Some(v) => Ok(v),
            // Every required setting has a default text.
            None => Err(ConfigError::Invalid {
                origin: Origin {
                    setting,
                    source: Source::Default,
                },
                value: String::new(),
                reason: "no value".to_owned(),
            }),
        }
    }

    fn resolve(self) -> Result<Config, ConfigError> {
        let sip_listen = self.required(Setting::SipListen, parse_socket_addr)?;
        let http_listen = self.required(Setting::HttpListen, parse_socket_addr)?;
        let rtp_ports = self.required(Setting::RtpPorts, |s| s.parse::<PortRange>())?;
        let public_ip = match self.parse(Setting::PublicIp, parse_ip)? {
            Some(ip) => ip,
            None => derive_public_ip(sip_listen.ip()),
        };
        let domain = match self.parse(Setting::Domain, parse_domain)? {
            Some(d) => d,
            None => host_text(public_ip),
        };
        let database_url = self.required(Setting::DatabaseUrl, parse_database_url)?;
        let flows = self.required(Setting::Flows, parse_path)?;
        let sounds = self.required(Setting::Sounds, parse_path)?;
        let recordings = self.required(Setting::Recordings, parse_path)?;
        let admin_token = self.parse(Setting::AdminToken, parse_token)?;
        let trusted_peers = self
            .parse(Setting::TrustedPeers, |s| s.parse::<CidrList>())?
            .unwrap_or_default();
        let digest_algorithms = self.required(Setting::DigestAlgorithms, parse_algorithms)?;
        let media_nice = self.required(Setting::MediaNice, parse_nice)?;
        Ok(Config {
            sip_listen,
            public_ip,
            domain,
            rtp_ports,
            http_listen,
            database_url,
            flows,
            sounds,
            recordings,
            admin_token,
            trusted_peers,
            digest_algorithms,
            media_nice,
        })
    }
}

/// `SHA-256,MD5`: a non-empty list without repeats.
fn parse_algorithms(s: &str) -> Result<Vec<DigestAlgorithm>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim) {
        let algorithm = DigestAlgorithm::from_token(item)
            .ok_or_else(|| format!("unknown digest algorithm {item:?}: use SHA-256 and/or MD5"))?;
        if out.contains(&algorithm) {
            return Err(format!("{item} is listed twice"));
        }
        out.push(algorithm);
    }
    Ok(out)
}

/// A nice value, -20 (first served) to 19 (last).
fn parse_nice(s: &str) -> Result<i32, String> {
    match s.parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err(
            "expected a nice value from -20 to 19 (0 leaves the media workers alone)".to_owned(),
        ),
    }
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| "expected IP:PORT such as 0.0.0.0:5060 or [::]:5060".to_owned())
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let ip = s
        .parse::<IpAddr>()
        .map_err(|_| "expected an IPv4 or IPv6 address".to_owned())?;
    if ip.is_unspecified() {
        return Err("the public IP cannot be the unspecified address".to_owned());
    }
    Ok(ip)
}

fn parse_domain(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the domain is empty".to_owned());
    }
    if s.len() > 253 {
        return Err("the domain is longer than 253 characters".to_owned());
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if !s.chars().all(ok) {
        return Err("expected a host name or IP address".to_owned());
    }
    Ok(s.to_owned())
}

fn parse_database_url(s: &str) -> Result<String, String> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if supported.iter().any(|p| s.starts_with(p)) {
        Ok(s.to_owned())
    } else {
        Err("expected a sqlite://FILE or postgres://… URL".to_owned())
    }
}

fn parse_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        Err("the path is empty".to_owned())
    } else {
        Ok(PathBuf::from(s))
    }
}

fn parse_token(s: &str) -> Result<String, String> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err("the admin token must be printable ASCII without spaces".to_owned());
    }
    Ok(s.to_owned())
}

/// How an IP is written as a SIP host: IPv6 in brackets (RFC 3261 §25.1).
fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The address written into Contact, Via and SDP when none is configured:
/// the listen address if it is a specific one, else the source address of
/// the default route (a connected UDP socket sends nothing), else loopback.
pub fn derive_public_ip(listen: IpAddr) -> IpAddr {
    if !listen.is_unspecified() {
        return listen;
    }
    let probe: SocketAddr = match listen {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9),
        IpAddr::V6(_) => SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            9,
        ),
    };
    let bind: SocketAddr = SocketAddr::new(listen, 0);
    let found = UdpSocket::bind(bind)
        .and_then(|s| s.connect(probe).map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    found.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The RTP port range: RTP on even ports from `start`, RTCP on the odd port
/// above each (RFC 3550 §11). Both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    /// The even RTP ports whose RTCP port (+1) is still inside the range.
    pub fn rtp_ports(self) -> impl Iterator<Item = u16> {
        (self.start..self.end).step_by(2)
    }

    /// How many RTP/RTCP pairs the range holds.
    pub fn pairs(self) -> usize {
        (usize::from(self.end) - usize::from(self.start)).div_ceil(2)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| "expected START-END such as 20000-29999".to_owned())?;
        let port = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| format!("{t:?} is not a port number (1-65535)"))
        };
        let (start, end) = (port(a)?, port(b)?);
        if start == 0 {
            return Err("the range cannot start at port 0".to_owned());
        }
        if start % 2 != 0 {
            return Err(format!(
                "the start port {start} must be even (RTP on even ports)"
            ));
        }
        if end <= start {
            return Err(format!(
                "the end port {end} must be above the start port {start} (room for RTP and RTCP)"
            ));
        }
        Ok(PortRange { start, end })
    }
}

/// An IP network: address and prefix length. Host bits are cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn addr(self) -> IpAddr {
        self.addr
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside the network. IPv4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) match IPv4 networks.
    pub fn contains(self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a single host).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{s:?}: the prefix length must be 0-{max}")),
            },
        };
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
        };
        Ok(Cidr { addr, prefix })
    }
}

/// A list of networks, e.g. the trusted SIP trunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

impl CidrList {
    /// Whether any network in the list contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for CidrList {
    type Err = String;

    /// Comma- or whitespace-separated networks; empty means none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(CidrList)
    }
}

impl fmt::Display for CidrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_match_the_design_table() {
        let c = Config::from_sources(None, no_env, &[]).unwrap();
        assert_eq!(c.sip_listen, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(c.http_listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            c.rtp_ports,
            PortRange {
                start: 20000,
                end: 29999
            }
        );
        assert_eq!(c.database_url, "sqlite://switchboard.db");
        assert_eq!(c.flows, PathBuf::from("ivr-flows"));
        assert_eq!(c.sounds, PathBuf::from("sounds"));
        assert_eq!(c.recordings, PathBuf::from("recordings"));
        assert_eq!(c.admin_token, None);
        assert!(c.trusted_peers.is_empty());
        assert!(!c.public_ip.is_unspecified());
        assert_eq!(c.domain, host_text(c.public_ip));
        assert_eq!(c.media_nice, -10);
    }

    #[test]
    fn media_nice_from_file_integer_env_and_flag_within_bounds() {
        let file = (Path::new("x.toml"), "media_nice = -5\n");
        let c = Config::from_sources(Some(file), no_env, &[]).unwrap();
        assert_eq!(c.media_nice, -5);
        let env = env_of(&[("SWITCHBOARD_MEDIA_NICE", "0")]);
        assert_eq!(
            Config::from_sources(Some(file), env, &[])
                .unwrap()
                .media_nice,
            0
        );
        let flags = [(Setting::MediaNice, "19".to_owned())];
        assert_eq!(
            Config::from_sources(None, no_env, &flags)
                .unwrap()
                .media_nice,
            19
        );
        for bad in ["-21", "20", "high", ""] {
            let flags = [(Setting::MediaNice, bad.to_owned())];
            let err = Config::from_sources(None, no_env, &flags).unwrap_err();
            assert!(
                err.to_string().contains("media_nice (flag --media-nice)")
                    && err.to_string().contains("-20 to 19"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn precedence_is_default_file_env_flag() {
        let file = (
            Path::new("sb.toml"),
            "sip_listen = \"127.0.0.2:5070\"\nflows = \"file-flows\"\nsounds = \"file-sounds\"\nrecordings = \"file-rec\"\n",
        );
        let env = env_of(&[
            ("SWITCHBOARD_FLOWS", "env-flows"),
            ("SWITCHBOARD_SOUNDS", "env-sounds"),
        ]);
        let flags = [(Setting::Sounds, "flag-sounds".to_owned())];
        let c = Config::from_sources(Some(file), env, &flags).unwrap();
        assert_eq!(c.sip_listen, "127.0.0.2:5070".parse().unwrap());
        assert_eq!(c.recordings, PathBuf::from("file-rec"));
        assert_eq!(c.flows, PathBuf::from("env-flows"));
        assert_eq!(c.sounds, PathBuf::from("flag-sounds"));
        assert_eq!(c.http_listen, "127.0.0.1:8080".parse().unwrap());
        // Derived from a specific listen address.
        assert_eq!(c.public_ip, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(c.domain, "127.0.0.2");
    }

    #[test]
    fn empty_env_values_are_unset() {
        let env = env_of(&[("SWITCHBOARD_FLOWS", "")]);
        let c = Config::from_sources(None, env, &[]).unwrap();
        assert_eq!(c.flows, PathBuf::from("ivr-flows"));
    }

    #[test]
    fn explicit_public_ip_and_domain_win_over_derivation() {
        let flags = [
            (Setting::PublicIp, "203.0.113.7".to_owned()),
            (Setting::Domain, "pbx.example.com".to_owned()),
        ];
        let c = Config::from_sources(None, no_env, &flags).unwrap();
        assert_eq!(c.public_ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(c.domain, "pbx.example.com");
        let flags = [(Setting::PublicIp, "2001:db8::5".to_owned())];
        let c = Config::from_sources(None, no_env, &flags).unwrap();
        assert_eq!(c.domain, "[2001:db8::5]");
    }

    #[test]
    fn errors_name_the_setting_and_source() {
        let env = env_of(&[("SWITCHBOARD_SIP_LISTEN", "nonsense")]);
        let err = Config::from_sources(None, env, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sip_listen"), "{err}");
        assert!(err.contains("SWITCHBOARD_SIP_LISTEN"), "{err}");
        assert!(err.contains("nonsense"), "{err}");

        let flags = [(Setting::RtpPorts, "20001-20010".to_owned())];
        let err = Config::from_sources(None, no_env, &flags)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--rtp-ports"), "{err}");
        assert!(err.contains("even"), "{err}");

        let file = (Path::new("x.toml"), "http_listen = \"1.2.3.4\"\n");
        let err = Config::from_sources(Some(file), no_env, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `http_listen` in x.toml"), "{err}");
    }

    #[test]
    fn file_rejects_unknown_keys_and_wrong_types() {
        let file = (Path::new("x.toml"), "sip_lisen = \"1.2.3.4:5\"\n");
        let err = Config::from_sources(Some(file), no_env, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "sip_lisen"));
        let file = (Path::new("x.toml"), "flows = 3\n");
        let err = Config::from_sources(Some(file), no_env, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::KeyType { .. }));
        let file = (Path::new("x.toml"), "flows = \n");
        let err = Config::from_sources(Some(file), no_env, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::ParseFile { .. }));
    }

    #[test]
    fn trusted_peers_from_file_array_and_env_string() {
        let file = (
            Path::new("x.toml"),
            "trusted_peers = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n",
        );
        let c = Config::from_sources(Some(file), no_env, &[]).unwrap();
        assert_eq!(c.trusted_peers.0.len(), 2);
        assert!(c.trusted_peers.contains("10.1.2.3".parse().unwrap()));
        assert!(c.trusted_peers.contains("2001:db8:1::9".parse().unwrap()));
        assert!(!c.trusted_peers.contains("11.0.0.1".parse().unwrap()));

        let env = env_of(&[("SWITCHBOARD_TRUSTED_PEERS", "192.0.2.10, 198.51.100.0/24")]);
        let c = Config::from_sources(Some(file), env, &[]).unwrap();
        assert_eq!(c.trusted_peers.to_string(), "192.0.2.10/32,198.51.100.0/24");
    }

    #[test]
    fn port_range_parsing() {
        assert_eq!(
            "20000-29999".parse::<PortRange>(),
            Ok(PortRange {
                start: 20000,
                end: 29999
            })
        );
        let r: PortRange = "10000-10005".parse().unwrap();
        assert_eq!(r.rtp_ports().collect::<Vec<_>>(), vec![10000, 10002, 10004]);
        assert_eq!(r.pairs(), 3);
        let r: PortRange = "10000-10001".parse().unwrap();
        assert_eq!(r.rtp_ports().collect::<Vec<_>>(), vec![10000]);
        for bad in [
            "",
            "20000",
            "20001-20010",
            "0-10",
            "20000-20000",
            "30000-20000",
            "a-b",
            "1-70000",
        ] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.255.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));

        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        let host: Cidr = "192.0.2.1".parse().unwrap();
        assert_eq!(host.prefix(), 32);
        assert!(!host.contains("192.0.2.2".parse().unwrap()));

        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let v6all: Cidr = "::/0".parse().unwrap();
        assert!(v6all.contains("fe80::1".parse().unwrap()));

        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/-1",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!("".parse::<CidrList>().unwrap().is_empty());
        assert!("10.0.0.0/8,bogus".parse::<CidrList>().is_err());
    }

    #[test]
    fn derived_public_ip_is_never_unspecified() {
        let ip = derive_public_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(!ip.is_unspecified());
        let ip = derive_public_ip("192.0.2.5".parse().unwrap());
        assert_eq!(ip, "192.0.2.5".parse::<IpAddr>().unwrap());
    }
}
