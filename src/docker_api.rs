//! Docker's names for the ports it publishes: which container (its name, id and image, and the
//! Compose project and service or the Swarm service it belongs to) is behind each entry of the
//! exposure report.
//!
//! Names are for people: nothing here decides a rule, and the firewall is planned before the
//! API is asked. Pure: the HTTP/1.1 exchange (the request's bytes, the response's status line,
//! headers and a `Content-Length`, chunked or read-to-the-end body), the `docker_host` address
//! and the JSON of `GET /containers/json` to names. `host.rs` moves the bytes over the socket.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::exposure::Published;

/// Where Docker's API is when neither `docker_host` nor `DOCKER_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The one request the module makes: every running container.
pub const CONTAINERS_PATH: &str = "/containers/json";

/// The largest answer read; a few thousand containers fit in a fraction of it.
pub const MAX_RESPONSE: usize = 32 << 20;

/// The keys `Names` adds to a `published` entry (the fields below, as serialised).
pub const NAME_FIELDS: &[&str] = &[
    "container",
    "container_id",
    "image",
    "compose_project",
    "compose_service",
    "swarm_service",
];

/// Who publishes a port, as Docker names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Names {
    /// The container's name, without Docker's leading `/`.
    pub container: String,
    /// The container's full id.
    pub container_id: String,
    /// The image as the container was created from it (a name, or an id).
    pub image: String,
    /// `com.docker.compose.project`, when Compose made the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_project: Option<String>,
    /// `com.docker.compose.service`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_service: Option<String>,
    /// `com.docker.swarm.service.name`, when the container is a Swarm task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm_service: Option<String>,
}

/// Who publishes a port: a container (host mode), or a Swarm service (through the ingress
/// routing mesh, whose tasks are not behind the port one by one). Flattened into the report's
/// entry: `container`, `container_id`, `image`, ... or `swarm_service` alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Publisher {
    Container(Names),
    Service { swarm_service: String },
}

/// One running container, as far as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub names: Names,
    /// Its IPv4 and IPv6 addresses on every network.
    pub addresses: Vec<IpAddr>,
    /// Its ports (`Ports[]`): private port, protocol, and the public port when published.
    pub ports: Vec<Port>,
}

/// One entry of a container's `Ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub private: u16,
    pub public: Option<u16>,
    pub proto: String,
}

/// The socket path of a `docker_host` address. Only `unix://` is supported: the module reads
/// the local daemon, never one over the network.
pub fn socket_path(docker_host: &str) -> Result<PathBuf, String> {
    match docker_host.strip_prefix("unix://") {
        Some(path) if path.starts_with('/') && !path.contains('\0') => Ok(PathBuf::from(path)),
        Some(_) => Err(format!(
            "docker_host {docker_host:?} names no absolute socket path; write it as \
             unix:///var/run/docker.sock"
        )),
        None => Err(format!(
            "docker_host {docker_host:?} is not supported: only a local socket \
             (unix:///path/to/docker.sock) is; ufw_docker reads the daemon of the host it runs on"
        )),
    }
}

/// The address to read, from the task's `docker_host`, else the environment's `DOCKER_HOST`,
/// else `DEFAULT_HOST`. An empty value counts as not set.
pub fn resolve_host(param: Option<&str>, env: Option<&str>) -> String {
    [param, env]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())
        .unwrap_or(DEFAULT_HOST)
        .to_string()
}

/// The bytes of `GET path` over HTTP/1.1. `Connection: close`: the daemon ends the answer by
/// closing, so a body of unknown length (neither `Content-Length` nor chunked) still ends.
pub fn request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: ufw_docker\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// An HTTP response, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Parses a whole HTTP/1.x response, as read until the daemon closed the connection: the
/// status line, the headers, and the body by `Transfer-Encoding: chunked`, else
/// `Content-Length`, else everything after the headers. A body cut short is an error.
pub fn parse_response(bytes: &[u8]) -> Result<Response, String> {
    let end = find(bytes, b"\r\n\r\n").ok_or("the answer ends before its headers do")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "the headers are not text")?;
    let rest = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status(status_line)?;
    let mut headers = BTreeMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a header line without a colon: {line:?}"))?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("Content-Length is not a number: {length:?}"))?;
        if rest.len() < length {
            return Err(format!(
                "the body ends after {} of its {length} bytes",
                rest.len()
            ));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn parse_status(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next());
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 answer: {line:?}"));
    }
    code.and_then(|c| c.parse().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| format!("a status line without a status: {line:?}"))
}

/// The body of a chunked transfer: hex sizes (extensions after `;` ignored), each chunk
/// followed by CRLF, up to the zero-sized chunk (trailers ignored).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = find(rest, b"\r\n").ok_or("a chunk size line is cut short")?;
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| "a chunk size is not text")?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| format!("a chunk size is not hexadecimal: {line:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(format!("a chunk of {size} bytes is cut short"));
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(format!("a chunk of {size} bytes does not end with CRLF"));
        }
        body.extend_from_slice(&rest[..size]);
        if body.len() > MAX_RESPONSE {
            return Err("the body is too large".into());
        }
        rest = &rest[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a successful answer, or why there is none.
pub fn ok_body(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let response = parse_response(bytes)?;
    if response.status != 200 {
        let text = String::from_utf8_lossy(&response.body);
        return Err(format!(
            "the daemon answered {}: {}",
            response.status,
            text.trim()
        ));
    }
    Ok(response.body)
}

/// The containers of a `GET /containers/json` body. Fields the matching needs are required;
/// anything else missing is left empty.
pub fn parse_containers(body: &[u8]) -> Result<Vec<Container>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let list = value
        .as_array()
        .ok_or("the answer is not a list of containers")?;
    list.iter().map(container).collect()
}

fn container(v: &Value) -> Result<Container, String> {
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let id = text("Id").ok_or("a container without an Id")?;
    let name = v
        .get("Names")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        // A legacy link adds `/other/alias`; the container's own name has no slash.
        .find(|n| !n.contains('/'))
        .unwrap_or_default()
        .to_string();
    let label = |key: &str| {
        v.get("Labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut addresses = Vec::new();
    if let Some(networks) = v
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
    {
        for net in networks.values() {
            for key in ["IPAddress", "GlobalIPv6Address"] {
                if let Some(ip) = net.get(key).and_then(Value::as_str) {
                    if let Ok(ip) = ip.parse::<IpAddr>() {
                        addresses.push(ip);
                    }
                }
            }
        }
    }
    let ports = v
        .get("Ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let number = |key: &str| {
                p.get(key)
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
            };
            Some(Port {
                private: number("PrivatePort")?,
                public: number("PublicPort"),
                proto: p.get("Type").and_then(Value::as_str)?.to_string(),
            })
        })
        .collect();
    Ok(Container {
        names: Names {
            container: name,
            container_id: id,
            image: text("Image").unwrap_or_default(),
            compose_project: label("com.docker.compose.project"),
            compose_service: label("com.docker.compose.service"),
            swarm_service: label("com.docker.swarm.service.name"),
        },
        addresses,
        ports,
    })
}

/// What `GET /services` says of the ports a Swarm service publishes through the ingress
/// routing mesh.
pub const SERVICES_PATH: &str = "/services";

/// A port a Swarm service publishes through the routing mesh (`Endpoint.Ports[]` with
/// `PublishMode` `ingress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressPort {
    pub service: String,
    pub proto: String,
    pub published: u16,
}

/// The ingress ports of a `GET /services` body (a manager's answer). A service without a name or
/// ports, or a port published in host mode (its task's container is named instead), is left out.
pub fn parse_services(body: &[u8]) -> Result<Vec<IngressPort>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let list = value
        .as_array()
        .ok_or("the answer is not a list of services")?;
    let mut ports = Vec::new();
    for service in list {
        let Some(name) = service.pointer("/Spec/Name").and_then(Value::as_str) else {
            continue;
        };
        for p in service
            .pointer("/Endpoint/Ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mode = p
                .get("PublishMode")
                .and_then(Value::as_str)
                .unwrap_or("ingress");
            let published = p
                .get("PublishedPort")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok());
            if let (true, Some(published)) = (mode == "ingress", published) {
                ports.push(IngressPort {
                    service: name.to_string(),
                    proto: p
                        .get("Protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("tcp")
                        .to_string(),
                    published,
                });
            }
        }
    }
    Ok(ports)
}

/// The Swarm service behind an ingress port: the one publishing its host port and protocol.
pub fn service_for<'a>(ports: &'a [IngressPort], port: &Published) -> Option<&'a str> {
    let public = port.host_port.parse::<u16>().ok()?;
    ports
        .iter()
        .find(|p| p.published == public && p.proto == port.proto)
        .map(|p| p.service.as_str())
}

/// Whether an answer says this node is not a Swarm manager (or not in a Swarm): only managers
/// list services, and a worker's ingress ports stay unnamed without a warning on every run.
pub fn not_a_manager(bytes: &[u8]) -> bool {
    parse_response(bytes).is_ok_and(|r| r.status == 503)
}

/// The container behind a published port: the one with the entry's container address and
/// private port; failing that (a Swarm task in host mode sits on a network the list does not
/// show), the only one publishing the entry's host port and protocol.
pub fn names_for<'a>(containers: &'a [Container], port: &Published) -> Option<&'a Names> {
    let proto = port.proto.as_str();
    let address = port.container_address.parse::<IpAddr>().ok();
    let private = port.container_port.parse::<u16>().ok();
    let by_address = containers.iter().find(|c| {
        address.is_some_and(|a| c.addresses.contains(&a))
            && (c.ports.is_empty()
                || c.ports
                    .iter()
                    .any(|p| Some(p.private) == private && p.proto == proto))
    });
    if let Some(c) = by_address {
        return Some(&c.names);
    }
    let public = port.host_port.parse::<u16>().ok()?;
    let mut by_port = containers.iter().filter(|c| {
        c.ports
            .iter()
            .any(|p| p.public == Some(public) && Some(p.private) == private && p.proto == proto)
    });
    match (by_port.next(), by_port.next()) {
        (Some(c), None) => Some(&c.names),
        _ => None,
    }
}

/// The warning of a run whose names are missing, and why.
pub fn missing_names_warning(docker_host: &str, why: &str) -> String {
    format!(
        "the exposure report has no container names: Docker's API at {docker_host} could not \
         be read ({why}). The rules do not depend on it; set docker_host (or DOCKER_HOST) to \
         the daemon's socket to see the names"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_fields_are_the_keys_names_serialise_to() {
        let all = Names {
            compose_project: Some(String::new()),
            compose_service: Some(String::new()),
            swarm_service: Some(String::new()),
            ..Names::default()
        };
        let json = serde_json::to_value(all).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = NAME_FIELDS.to_vec();
        keys.sort_unstable();
        fields.sort_unstable();
        assert_eq!(keys, fields);
    }

    fn published(family: &'static str, addr: &str, port: &str, host_port: &str) -> Published {
        Published {
            family,
            proto: "tcp".into(),
            host_address: None,
            host_port: host_port.into(),
            container_address: addr.into(),
            container_port: port.into(),
            bridge: None,
            mode: crate::exposure::Mode::Host,
        }
    }

    #[test]
    fn only_local_sockets_are_addresses() {
        assert_eq!(
            socket_path(DEFAULT_HOST).unwrap(),
            PathBuf::from("/var/run/docker.sock")
        );
        let err = socket_path("tcp://10.0.0.1:2375").unwrap_err();
        assert!(err.contains("not supported"), "{err}");
        assert!(socket_path("unix://docker.sock").is_err());
        assert!(socket_path("ssh://host").is_err());
    }

    #[test]
    fn the_parameter_wins_over_the_environment_over_the_default() {
        assert_eq!(
            resolve_host(Some("unix:///a"), Some("unix:///b")),
            "unix:///a"
        );
        assert_eq!(resolve_host(None, Some("unix:///b")), "unix:///b");
        assert_eq!(resolve_host(Some(""), Some("unix:///b")), "unix:///b");
        assert_eq!(resolve_host(None, Some("")), DEFAULT_HOST);
        assert_eq!(resolve_host(None, None), DEFAULT_HOST);
    }

    #[test]
    fn the_request_is_one_get_that_asks_the_daemon_to_close() {
        let text = String::from_utf8(request(CONTAINERS_PATH)).unwrap();
        assert!(text.starts_with("GET /containers/json HTTP/1.1\r\nHost: docker\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn bodies_by_length_by_chunks_and_to_the_end() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\n[]";
        assert_eq!(parse_response(sized).unwrap().body, b"[]");
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n\
            3;ext=1\r\n[{}\r\n1\r\n]\r\n0\r\nTrailer: x\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body, b"[{}]");
        let open = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[1]";
        assert_eq!(parse_response(open).unwrap().body, b"[1]");
        let missing =
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 28\r\n\r\n{\"message\":\"page not found\"}";
        let err = ok_body(missing).unwrap_err();
        assert_eq!(
            err,
            "the daemon answered 404: {\"message\":\"page not found\"}"
        );
    }

    #[test]
    fn malformed_answers_are_errors_never_panics() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "before its headers"),
            (b"SSH-2.0-OpenSSH_9.2\r\n", "before its headers"),
            (b"garbage\r\n\r\n", "not an HTTP/1 answer"),
            (b"HTTP/1.1 abc\r\n\r\n", "without a status"),
            (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "without a colon"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[]",
                "2 of its 10",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "not a number",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "not hexadecimal",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n[]",
                "cut short",
            ),
        ];
        for (bytes, why) in cases {
            let err = parse_response(bytes).unwrap_err();
            assert!(
                err.contains(why),
                "{:?}: {err}",
                String::from_utf8_lossy(bytes)
            );
        }
        let no_end = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n";
        assert!(parse_response(no_end).unwrap_err().contains("cut short"));
        let bad_crlf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]xx0\r\n\r\n";
        assert!(parse_response(bad_crlf).unwrap_err().contains("CRLF"));
        for body in [
            &b"{\"not\": \"a list\"}"[..],
            b"[{\"Names\": [\"/x\"]}]",
            b"[1,",
        ] {
            assert!(parse_containers(body).is_err());
        }
    }

    #[test]
    fn labels_give_compose_and_swarm_names() {
        let body = br#"[{"Id": "abc", "Names": ["/other/alias", "/shop-web-1"], "Image": "shop:1",
            "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "web",
                       "com.docker.swarm.service.name": ""},
            "Ports": [{"PrivatePort": 80, "PublicPort": 8090, "Type": "tcp", "IP": "0.0.0.0"},
                      {"PrivatePort": 81, "Type": "udp"}],
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.3",
                "GlobalIPv6Address": "fd00:dead:beef::3"}}}}]"#;
        let c = parse_containers(body).unwrap();
        assert_eq!(
            c[0].names,
            Names {
                container: "shop-web-1".into(),
                container_id: "abc".into(),
                image: "shop:1".into(),
                compose_project: Some("shop".into()),
                compose_service: Some("web".into()),
                swarm_service: None,
            }
        );
        let json = serde_json::to_value(&c[0].names).unwrap();
        assert!(json.get("swarm_service").is_none(), "{json}");
        let v6 = published("ipv6", "fd00:dead:beef:0::3", "80", "8090");
        assert_eq!(names_for(&c, &v6).unwrap().container, "shop-web-1");
        assert_eq!(
            names_for(&c, &published("ipv4", "172.17.0.9", "80", "1")),
            None
        );
        let mut udp = published("ipv4", "172.17.0.3", "81", "8091");
        udp.proto = "udp".into();
        assert!(names_for(&c, &udp).is_some());
        udp.proto = "tcp".into();
        assert_eq!(names_for(&c, &udp), None, "no tcp 81 there");
    }

    /// `GET /containers/json` of the bed's dockerd (tests/data/docker-api/capture.sh): both
    /// chunked, as Docker sends a list of a few kilobytes.
    const CONTAINERS_20: &[u8] = include_bytes!("../tests/data/docker-api/containers-20.http");
    const CONTAINERS_28: &[u8] = include_bytes!("../tests/data/docker-api/containers-28.http");
    /// `GET /version`: a short answer, sent with a Content-Length.
    const VERSION_20: &[u8] = include_bytes!("../tests/data/docker-api/version-20.http");
    const VERSION_28: &[u8] = include_bytes!("../tests/data/docker-api/version-28.http");
    /// `GET /services` of Docker 28's swarm: `api` in host mode, `edge` through the mesh.
    const SERVICES_28: &[u8] = include_bytes!("../tests/data/docker-api/services-28.http");

    #[test]
    fn ingress_ports_are_named_by_their_swarm_service() {
        let ports = parse_services(&ok_body(SERVICES_28).unwrap()).unwrap();
        assert_eq!(
            ports,
            [
                IngressPort {
                    service: "edge".into(),
                    proto: "tcp".into(),
                    published: 8098
                },
                IngressPort {
                    service: "edge".into(),
                    proto: "udp".into(),
                    published: 8099
                },
            ],
            "api publishes in host mode: its task's container is named instead"
        );
        let mut port = published("ipv4", "172.18.0.2", "8098", "8098");
        port.mode = crate::exposure::Mode::Ingress;
        assert_eq!(service_for(&ports, &port), Some("edge"));
        port.proto = "udp".into();
        assert_eq!(
            service_for(&ports, &port),
            None,
            "8098/udp is not published"
        );
        port.host_port = "8099".into();
        assert_eq!(service_for(&ports, &port), Some("edge"));
        assert!(parse_services(b"{}").is_err());
        let worker = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}";
        assert!(not_a_manager(worker));
        assert!(!not_a_manager(SERVICES_28));
    }

    #[test]
    fn recorded_answers_of_docker_20_and_28_parse() {
        for (raw, api) in [(VERSION_20, "1.41"), (VERSION_28, "1.51")] {
            let v: Value = serde_json::from_slice(&ok_body(raw).unwrap()).unwrap();
            assert_eq!(v["ApiVersion"], api);
        }
        for raw in [CONTAINERS_20, CONTAINERS_28] {
            let text = String::from_utf8_lossy(raw);
            assert!(
                text.contains("Transfer-Encoding: chunked"),
                "the fixture is chunked"
            );
            let c = parse_containers(&ok_body(raw).unwrap()).unwrap();
            let mut names: Vec<_> = c.iter().map(|c| c.names.container.as_str()).collect();
            let tasks = names.iter().filter(|n| n.starts_with("api.1.")).count();
            assert_eq!(tasks, 1, "one Swarm task: {names:?}");
            // Docker 28's recording also has a task of `edge`, published through the ingress
            // routing mesh (no port of its own: Docker publishes it in DOCKER-INGRESS).
            names.retain(|n| !n.starts_with("api.") && !n.starts_with("edge."));
            assert_eq!(names, ["plain", "shop-web-1", "web"]);
        }
        // Cut anywhere, the chunked answer is an error, never a shorter list.
        for cut in [CONTAINERS_28.len() - 7, CONTAINERS_28.len() / 2, 200] {
            assert!(ok_body(&CONTAINERS_28[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn every_port_of_the_recorded_daemons_is_named() {
        for (raw, v6) in [
            (
                CONTAINERS_20,
                [
                    "fd00:dead:beef::242:ac11:2",
                    "fd00:10::2",
                    "fd00:dead:beef::242:ac11:4",
                ],
            ),
            (
                CONTAINERS_28,
                ["fd00:dead:beef::2", "fd00:10::2", "fd00:dead:beef::4"],
            ),
        ] {
            let c = parse_containers(&ok_body(raw).unwrap()).unwrap();
            let shop = names_for(&c, &published("ipv4", "172.17.0.2", "80", "8090")).unwrap();
            assert_eq!(shop.container, "shop-web-1");
            assert_eq!(shop.compose_project.as_deref(), Some("shop"));
            assert_eq!(shop.compose_service.as_deref(), Some("web"));
            assert_eq!(shop.container_id.len(), 64);
            let shop6 = names_for(&c, &published("ipv6", v6[0], "80", "8090")).unwrap();
            assert_eq!(shop6, shop);
            let web = names_for(&c, &published("ipv6", v6[1], "80", "8080")).unwrap();
            assert_eq!(
                (web.container.as_str(), web.compose_project.as_ref()),
                ("web", None)
            );
            let mut udp = published("ipv4", "10.10.0.10", "81", "8081");
            udp.proto = "udp".into();
            assert_eq!(names_for(&c, &udp).unwrap().container, "web");
            let plain = names_for(&c, &published("ipv4", "172.17.0.3", "91", "9001")).unwrap();
            assert!(plain.image.starts_with("ufwd-test"), "{plain:?}");
            // The Swarm service's task, published in host mode (on the default bridge, both
            // versions): named by its address in either family, and by its port alone.
            let api = names_for(&c, &published("ipv4", "172.17.0.4", "80", "8097")).unwrap();
            assert!(api.container.starts_with("api.1."), "{api:?}");
            assert_eq!(api.swarm_service.as_deref(), Some("api"));
            assert_eq!(api.image, "ufwd-test:latest");
            assert_eq!(api.compose_project, None);
            let api6 = names_for(&c, &published("ipv6", v6[2], "80", "8097")).unwrap();
            assert_eq!(api6, api);
            let moved = names_for(&c, &published("ipv4", "172.31.0.9", "80", "8097")).unwrap();
            assert_eq!(moved, api);
        }
    }

    #[test]
    fn without_the_address_the_one_container_publishing_the_port_is_named() {
        let body = br#"[{"Id": "t1", "Names": ["/api.1.x"], "Image": "img",
            "Labels": {"com.docker.swarm.service.name": "api"},
            "Ports": [{"PrivatePort": 80, "PublicPort": 8097, "Type": "tcp"}],
            "NetworkSettings": {"Networks": {}}},
            {"Id": "t2", "Names": ["/b"], "Image": "img",
            "Ports": [{"PrivatePort": 80, "PublicPort": 8098, "Type": "tcp"},
                      {"PrivatePort": 80, "PublicPort": 8098, "Type": "tcp"}]},
            {"Id": "t3", "Names": ["/c"], "Image": "img",
            "Ports": [{"PrivatePort": 80, "PublicPort": 8098, "Type": "tcp"}]}]"#;
        let c = parse_containers(body).unwrap();
        let n = names_for(&c, &published("ipv4", "172.18.0.3", "80", "8097")).unwrap();
        assert_eq!(n.swarm_service.as_deref(), Some("api"));
        assert_eq!(
            names_for(&c, &published("ipv4", "172.18.0.4", "80", "8098")),
            None,
            "two containers publish 8098: no guess"
        );
    }
}
