//! What the module must know about Docker's own firewall: whether Docker programs nftables
//! directly (Docker 29's `firewall-backend: nftables`), in which case there is no DOCKER-USER
//! chain for the module to fill and it must refuse rather than report success.
//!
//! Pure: the shell passes what `nft list tables` printed and the daemon's configuration.

/// The nftables table Docker creates when it uses its nftables firewall backend.
pub const NFT_TABLE: &str = "docker-bridges";

/// Why the host's Docker has no DOCKER-USER chain, if it is so: `nft_tables` is the output of
/// `nft list tables` (when nft is installed), `daemon_json` the content of
/// /etc/docker/daemon.json (when it exists).
pub fn nftables_backend(nft_tables: Option<&str>, daemon_json: Option<&[u8]>) -> Option<String> {
    if let Some(tables) = nft_tables {
        if let Some(line) = tables
            .lines()
            .find(|l| l.split_whitespace().last() == Some(NFT_TABLE))
        {
            return Some(format!("nftables holds Docker's `{}`", line.trim()));
        }
    }
    let config: serde_json::Value = serde_json::from_slice(daemon_json?).ok()?;
    let backend = config.get("firewall-backend")?.as_str()?;
    (backend == "nftables")
        .then(|| "/etc/docker/daemon.json sets \"firewall-backend\": \"nftables\"".to_string())
}

/// The failure message for such a host.
pub fn nftables_message(reason: &str) -> String {
    format!(
        "Docker uses its nftables firewall backend here ({reason}). That backend has no \
         DOCKER-USER chain, so ufw_docker cannot keep published ports behind the firewall and \
         changed nothing. Set \"firewall-backend\": \"iptables\" in /etc/docker/daemon.json and \
         restart Docker, then rerun; or filter in nftables yourself (a chain in Docker's \
         `docker-bridges` table is rewritten by Docker)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_docker_nftables_table_or_the_daemon_setting() {
        let tables = "table inet filter\ntable ip docker-bridges\ntable ip6 docker-bridges\n";
        assert!(nftables_backend(Some(tables), None)
            .unwrap()
            .contains("table ip docker-bridges"));
        assert_eq!(
            nftables_backend(Some("table ip filter\ntable ip nat\n"), None),
            None
        );
        let json = br#"{"firewall-backend": "nftables", "ipv6": true}"#;
        assert!(nftables_backend(None, Some(json))
            .unwrap()
            .contains("daemon.json"));
        assert_eq!(
            nftables_backend(None, Some(br#"{"firewall-backend": "iptables"}"#)),
            None
        );
        assert_eq!(nftables_backend(None, Some(b"not json")), None);
        assert_eq!(nftables_backend(None, None), None);
        assert!(nftables_message("x").contains("no DOCKER-USER chain"));
    }
}
