//! Command-line compatibility with the Go tutorial, whose flags take one dash
//! (`-alias w1`, `-from w1`). clap reads long flags with two dashes, so a
//! single-dash word of two or more letters is rewritten to the two-dash form
//! before parsing. Values are never touched: a word right after `=`-less flag
//! that starts with a dash and a digit (a negative number) stays as it is.

/// Rewrites `-word` to `--word` for every argument that is a single dash
/// followed by a letter and at least one more letter, digit, '-' or '_'.
pub fn go_style_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let b = a.as_bytes();
            let single_dash_word = i > 0
                && b.len() > 2
                && b[0] == b'-'
                && b[1].is_ascii_alphabetic()
                && a[1..].split('=').next().is_some_and(|name| {
                    name.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if single_dash_word {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_single_dash_words() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            go_style_args(v(&[
                "prog",
                "send",
                "-from",
                "w1",
                "--to",
                "x",
                "-amount",
                "10",
                "-h",
                "-mint",
                "-dest=/ip4/1"
            ])),
            v(&[
                "prog",
                "send",
                "--from",
                "w1",
                "--to",
                "x",
                "--amount",
                "10",
                "-h",
                "--mint",
                "--dest=/ip4/1"
            ])
        );
        assert_eq!(go_style_args(v(&["prog", "-5"])), v(&["prog", "-5"]));
    }
}
