//! Function libraries (RDB opcode 245): the checks Redis makes when it creates a library while
//! loading a file, short of running the code. A library that fails any of them makes Redis
//! refuse the whole file.
//!
//! Redis reads the first line, `#!<engine> <args>`, splitting it like its command line (quotes
//! allowed); the only argument is `name=<lib>` (once, case-insensitive key), the name is letters,
//! digits and `_`, the engine `LUA` (any case). The rest, from the newline on, is compiled by
//! Lua 5.1 as the chunk `@user_function`, so Lua's messages read `user_function:<line>: ...`
//! with the line counted in the whole library text. Redis then runs the chunk, which must
//! register at least one function; running is out of reach of a static check and is not done.

/// The library's name when it passes, or Redis's reason to refuse it.
pub fn check_library(source: &[u8]) -> Result<Vec<u8>, String> {
    let (name, code) = metadata(source)?;
    compile(code)?;
    Ok(name)
}

/// The library name and the code after the shebang line (from its newline on).
pub fn metadata(source: &[u8]) -> Result<(Vec<u8>, &[u8]), String> {
    if !source.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(nl) = source.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = super::splitargs::split_args(&source[..nl]).ok_or("Invalid library metadata")?;
    let Some((first, args)) = parts.split_first() else {
        return Err("Invalid library metadata".into());
    };
    let engine = first.get(2..).unwrap_or_default();
    let mut name: Option<Vec<u8>> = None;
    for a in args {
        if a.len() >= 5 && a[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(a[5..].to_vec());
        } else {
            return Err(format!("Invalid metadata value given: {}", String::from_utf8_lossy(a)));
        }
    }
    let name = name.ok_or("Library name was not given")?;
    if name.is_empty() || !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        return Err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        );
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!("Engine '{}' not found", String::from_utf8_lossy(engine)));
    }
    Ok((name, &source[nl..]))
}

/// The library name in a function's shebang (`#!lua name=mylib ...`), read as the server reads
/// it (`metadata`: quotes, `NAME=` in any case); `None` for a shebang the server refuses.
pub fn library_name(source: &[u8]) -> Option<Vec<u8>> {
    metadata(source).ok().map(|(name, _)| name)
}

/// What a listing shows of a library: the engine named after `#!` (the first line split as the
/// server splits it; empty without a shebang or when the line does not split) and the library's
/// name when the server accepts the shebang (`metadata`).
pub fn describe(source: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let name = library_name(source);
    let line = &source[..source.iter().position(|&c| c == b'\n').unwrap_or(source.len())];
    let engine = if line.starts_with(b"#!") {
        super::splitargs::split_args(line).and_then(|p| Some(p.first()?.get(2..)?.to_vec()))
    } else {
        None
    };
    (engine.unwrap_or_default(), name)
}

/// Compiles (never runs) `code` with Lua 5.1, as Redis does before running a library.
pub fn compile(code: &[u8]) -> Result<(), String> {
    let lua = mlua::Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default())
        .map_err(|e| format!("cannot start Lua: {e}"))?;
    let chunk = lua.load(code).set_name("@user_function").set_mode(mlua::chunk::ChunkMode::Text);
    match chunk.into_function() {
        Ok(_) => Ok(()),
        Err(mlua::Error::SyntaxError { message, .. }) => Err(format!("Error compiling function: {message}")),
        Err(e) => Err(format!("Error compiling function: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine as written and the name as the server reads it; no name for a shebang the
    /// server refuses, no engine without a shebang.
    #[test]
    fn describes_a_library() {
        let d = |s: &str| {
            let (e, n) = describe(s.as_bytes());
            (String::from_utf8(e).unwrap(), n.map(|n| String::from_utf8(n).unwrap()))
        };
        assert_eq!(d("#!lua name=mylib\nreturn 1"), ("lua".into(), Some("mylib".into())));
        assert_eq!(d("#!LUA \"NAME=q\"\n"), ("LUA".into(), Some("q".into())));
        assert_eq!(d("#!js name=x\n"), ("js".into(), None));
        assert_eq!(d("#!lua foo=1 name=x\n"), ("lua".into(), None));
        assert_eq!(d("#!lua name=x"), ("lua".into(), None));
        assert_eq!(d("no shebang\n"), (String::new(), None));
    }

    #[test]
    fn shebangs() {
        let ok = |s: &str| metadata(s.as_bytes()).map(|(n, _)| String::from_utf8(n).unwrap());
        assert_eq!(ok("#!lua name=mylib\nreturn 1"), Ok("mylib".into()));
        assert_eq!(ok("#!LUA NAME=a_1\n"), Ok("a_1".into()));
        assert_eq!(ok("#!lua \"name=q\"\n"), Ok("q".into()));
        assert_eq!(ok("#!lua name=x"), Err("Invalid library metadata".into()));
        assert_eq!(ok("lua name=x\n"), Err("Missing library metadata".into()));
        assert_eq!(ok("#!lua\n"), Err("Library name was not given".into()));
        assert_eq!(
            ok("#!lua name=a name=b\n"),
            Err("Invalid metadata value, name argument was given multiple times".into())
        );
        assert_eq!(ok("#!lua name=a desc=b\n"), Err("Invalid metadata value given: desc=b".into()));
        assert!(ok("#!lua name=my-lib\n").unwrap_err().starts_with("Library names can only"));
        assert!(ok("#!lua name=\n").unwrap_err().starts_with("Library names can only"));
        assert_eq!(ok("#!js name=a\n"), Err("Engine 'js' not found".into()));
        assert_eq!(ok("#!lua name=\"a\n"), Err("Invalid library metadata".into()));
        // A vertical tab ends no word, but is skipped between words (Redis 7.0.15's answers to
        // FUNCTION LOAD of these first lines).
        assert_eq!(ok("#!lua\x0bname=a\n"), Err("Library name was not given".into()));
        assert!(ok("#!lua name=a\x0bb\n").unwrap_err().starts_with("Library names can only"));
        assert_eq!(ok("#!lua  \x0b name=c\n"), Ok("c".into()));
    }

    #[test]
    fn compiles_without_running() {
        // Would fail if run: the body calls a missing global.
        assert_eq!(compile(b"\nno_such_function()"), Ok(()));
        let e = compile(b"\nlocal x =\nredis.register_function('f', function() return 1 end)\nend").unwrap_err();
        assert!(e.starts_with("Error compiling function: user_function:4:"), "{e}");
    }
}
