//! Reading `INFO` replies: `field:value` lines under `# Section` headings.

/// The `field:value` lines of an `INFO` reply, as (field, value).
pub fn fields(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.trim_end_matches('\r').split_once(':'))
}

/// One line of `INFO keyspace`: `db3` and `keys=10,expires=2,avg_ttl=0` → (3, 10).
pub fn keyspace_line(name: &str, v: &str) -> Option<(u64, u64)> {
    let db = name.strip_prefix("db")?.parse().ok()?;
    let keys = v.split(',').find_map(|kv| kv.strip_prefix("keys="))?.parse().ok()?;
    Some((db, keys))
}

/// (db, keys) of every database an `INFO keyspace` (or `INFO`) reply lists.
pub fn keyspace(s: &str) -> Vec<(u64, u64)> {
    fields(s).filter_map(|(k, v)| keyspace_line(k, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_lines() {
        assert_eq!(keyspace_line("db3", "keys=10,expires=2,avg_ttl=0"), Some((3, 10)));
        assert_eq!(keyspace_line("dbx", "keys=10"), None);
        let reply = "# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\ndb12:keys=7,expires=1,avg_ttl=3\r\n";
        assert_eq!(keyspace(reply), vec![(0, 5), (12, 7)]);
        assert_eq!(
            fields("# Server\r\nredis_version:7.0.15\r\n").collect::<Vec<_>>(),
            vec![("redis_version", "7.0.15")]
        );
    }
}
