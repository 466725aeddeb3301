//! The conflict policies (`--on-conflict`) and the rename template.

use serde::Serialize;

/// What to do when one key (in one target db) comes from several places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Write nothing and list every colliding key.
    #[default]
    Error,
    /// Keep the copy met first (inputs in command-line order, then file order).
    First,
    /// Keep the copy met last.
    Last,
    /// Keep every copy, each under the name the rename template gives it.
    Rename,
}

/// A rename template: `{db}` (source db), `{key}`, `{input}` (0-based input number), `{file}`
/// (input file name without its extension); `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Db,
    Key,
    Input,
    File,
}

impl RenameTemplate {
    pub fn parse(s: &str) -> Result<RenameTemplate, String> {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'{' if b.get(i + 1) == Some(&b'{') => {
                    lit.push(b'{');
                    i += 2;
                }
                b'}' if b.get(i + 1) == Some(&b'}') => {
                    lit.push(b'}');
                    i += 2;
                }
                b'{' => {
                    let end = s[i..].find('}').ok_or_else(|| format!("--rename {s}: '{{' without '}}'"))?;
                    let part = match &s[i + 1..i + end] {
                        "db" => Part::Db,
                        "key" => Part::Key,
                        "input" => Part::Input,
                        "file" => Part::File,
                        other => {
                            return Err(format!(
                                "--rename {s}: unknown placeholder {{{other}}} (known: {{db}} {{key}} {{input}} {{file}}; \
                                 {{{{ and }}}} for literal braces)"
                            ));
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                    i += end + 1;
                }
                b'}' => return Err(format!("--rename {s}: lone '}}' (write }}}} for a literal brace)")),
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if !parts.contains(&Part::Key) {
            return Err(format!("--rename {s}: the template must contain {{key}}"));
        }
        Ok(RenameTemplate { parts })
    }

    pub fn render(&self, db: u64, key: &[u8], input: usize, file: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(key.len() + 16);
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::Db => out.extend_from_slice(db.to_string().as_bytes()),
                Part::Key => out.extend_from_slice(key),
                Part::Input => out.extend_from_slice(input.to_string().as_bytes()),
                Part::File => out.extend_from_slice(file.as_bytes()),
            }
        }
        out
    }
}

impl Default for RenameTemplate {
    fn default() -> RenameTemplate {
        RenameTemplate { parts: vec![Part::Db, Part::Lit(b":".to_vec()), Part::Key] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = RenameTemplate::parse("{db}:{key}").unwrap();
        assert_eq!(t.render(3, b"k", 0, "a"), b"3:k");
        assert_eq!(t, RenameTemplate::default());
        let t = RenameTemplate::parse("{{{file}}}-{input}/{key}").unwrap();
        assert_eq!(t.render(0, b"x", 2, "dump"), b"{dump}-2/x");
        assert!(RenameTemplate::parse("{db}").is_err());
        assert!(RenameTemplate::parse("{nope}{key}").is_err());
        assert!(RenameTemplate::parse("{key").is_err());
        assert!(RenameTemplate::parse("}{key}").is_err());
    }
}
