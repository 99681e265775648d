//! IAM wildcard matching, as used by `Action`, `Resource` and `StringLike`.
//!
//! `*` matches any sequence of characters, including the empty one, and `?`
//! matches exactly one character. Every other character matches only itself.
//! There is no escape syntax, so a policy cannot match a literal `*` or `?`
//! except through the wildcard itself.

/// Returns whether the whole of `text` matches `pattern`, comparing characters exactly.
///
/// Callers that need a case-insensitive match lowercase both sides first. The
/// algorithm keeps only the most recent `*` as a backtracking point, so it runs
/// in O(pattern length × text length) time in the worst case and never recurses.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();

    let mut pattern_pos = 0;
    let mut text_pos = 0;
    // The position of the last `*` in the pattern and the text position where
    // its current attempt starts. A mismatch retries with that `*` taking one
    // more character.
    let mut last_star: Option<(usize, usize)> = None;

    while let Some(&current) = text.get(text_pos) {
        match pattern.get(pattern_pos) {
            Some('*') => {
                last_star = Some((pattern_pos, text_pos));
                pattern_pos += 1;
            }
            Some(&expected) if expected == '?' || expected == current => {
                pattern_pos += 1;
                text_pos += 1;
            }
            _ => match last_star {
                Some((star_pos, star_text_pos)) => {
                    pattern_pos = star_pos + 1;
                    text_pos = star_text_pos + 1;
                    last_star = Some((star_pos, text_pos));
                }
                None => return false,
            },
        }
    }

    pattern
        .get(pattern_pos..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Returns whether `text` contains a `*` or `?` wildcard.
pub(crate) fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::{has_wildcard, wildcard_match};

    #[test]
    fn literal_pattern_matches_only_itself() {
        assert!(wildcard_match("abc", "abc"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(!wildcard_match("abc", "ab"));
        assert!(!wildcard_match("abc", "ABC"));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "a"));
    }

    #[test]
    fn star_matches_any_sequence() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anything at all"));
        assert!(wildcard_match("a*", "a"));
        assert!(wildcard_match("a*", "abc"));
        assert!(wildcard_match("*c", "abc"));
        assert!(wildcard_match("a*c", "ac"));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(!wildcard_match("a*c", "abcd"));
        assert!(wildcard_match("a**c", "abc"));
        assert!(wildcard_match("*b*", "abc"));
        assert!(!wildcard_match("*x*", "abc"));
    }

    #[test]
    fn star_needs_backtracking() {
        assert!(wildcard_match("*ab", "aab"));
        assert!(wildcard_match("a*b*c", "abbbcbc"));
        assert!(wildcard_match("*aab", "aaaab"));
        assert!(!wildcard_match("*aab", "aaaba"));
        assert!(wildcard_match("*:*", "lightsail:GetDisk"));
    }

    #[test]
    fn question_mark_matches_one_character() {
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("???", "xyz"));
        assert!(wildcard_match("?*", "x"));
        assert!(!wildcard_match("?*", ""));
    }

    #[test]
    fn question_mark_counts_characters_not_bytes() {
        assert!(wildcard_match("caf?", "café"));
        assert!(wildcard_match("?", "é"));
        assert!(!wildcard_match("??", "é"));
    }

    #[test]
    fn resource_arns_match_across_colons() {
        let arn = "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/abc";
        assert!(wildcard_match("arn:aws:lightsail:*", arn));
        assert!(wildcard_match("arn:aws:lightsail:*:*:DiskSnapshot/*", arn));
        assert!(wildcard_match("arn:aws:lightsail:us-*-1:*:*", arn));
        assert!(!wildcard_match("arn:aws:lightsail:*:*:Disk/*", arn));
    }

    #[test]
    fn long_input_with_many_stars_finishes() {
        let text = "a".repeat(2_000);
        let pattern = format!("{}b", "*a".repeat(500));
        assert!(!wildcard_match(&pattern, &text));
    }

    #[test]
    fn has_wildcard_detects_both_characters() {
        assert!(has_wildcard("a*"));
        assert!(has_wildcard("a?"));
        assert!(!has_wildcard("abc"));
    }
}
