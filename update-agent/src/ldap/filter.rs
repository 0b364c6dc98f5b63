//! `$user$` substitution with RFC 4515 escaping: whatever the account name
//! holds, it stays one assertion value and cannot add, close or widen a
//! filter component.

/// The placeholder the admin writes in a group's filter.
pub const PLACEHOLDER: &str = "$user$";

/// Escapes an assertion value per RFC 4515 section 3 (ldap3's escaping):
/// `*` → `\2a`, `(` → `\28`, `)` → `\29`, `\` → `\5c`, NUL → `\00`. Other
/// characters (UTF-8 included) are valid in a value as they are.
pub fn escape_value(value: &str) -> String {
    ldap3::ldap_escape(value).into_owned()
}

/// The group's filter with every `$user$` replaced by the escaped account.
pub fn expand(filter: &str, account: &str) -> String {
    filter.trim().replace(PLACEHOLDER, &escape_value(account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_per_rfc_4515() {
        for (input, want) in [
            ("ann", "ann"),
            ("*", "\\2a"),
            ("(", "\\28"),
            (")", "\\29"),
            ("a\\b", "a\\5cb"),
            ("a\0b", "a\\00b"),
            ("admin)(uid=*", "admin\\29\\28uid=\\2a"),
            ("*)(|(objectClass=*", "\\2a\\29\\28|\\28objectClass=\\2a"),
            ("\\2a", "\\5c2a"),
            ("jörg", "jörg"),
            ("DOMAIN\\ann", "DOMAIN\\5cann"),
            ("", ""),
        ] {
            assert_eq!(escape_value(input), want, "{input:?}");
        }
    }

    #[test]
    fn expands_every_placeholder_and_keeps_the_filter_shape() {
        let ad = "(&(objectCategory=person)(objectClass=user)(sAMAccountName=$user$)(memberof=CN=Sales,OU=Groups,DC=x,DC=com))";
        for (filter, account, want) in [
            (
                ad,
                "ann",
                "(&(objectCategory=person)(objectClass=user)(sAMAccountName=ann)(memberof=CN=Sales,OU=Groups,DC=x,DC=com))",
            ),
            (
                "(|(uid=$user$)(mail=$user$@x.com))",
                "a*",
                "(|(uid=a\\2a)(mail=a\\2a@x.com))",
            ),
            (
                "  (uid=$user$) ",
                "admin)(uid=*",
                "(uid=admin\\29\\28uid=\\2a)",
            ),
        ] {
            let got = expand(filter, account);
            assert_eq!(got, want, "{filter} / {account:?}");
            // Whatever the account, the parentheses are the admin's.
            let parens = |s: &str| s.chars().filter(|c| matches!(c, '(' | ')')).count();
            assert_eq!(parens(&got), parens(filter), "{account:?}");
            assert!(!got.contains('*') || filter.contains('*'), "{got}");
        }
    }
}
