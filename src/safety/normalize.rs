//! Folding a message into the plain form the risk lexicon is written against.
//!
//! People in distress type fast, on phones, in slang and sometimes on purpose past
//! filters. The screen reads every message in one canonical shape so that a pattern
//! written once ("kill myself") also catches "K1LL  MYSELF", "kill my self", "kіll myself"
//! (a Cyrillic і), "kill\u{200B}myself" and "I’m" written "Im":
//!
//! * lower case; zero-width and soft-hyphen characters removed;
//! * masked letters ("k*ll", "su*cide") read as the risk word they fit, and emoji of
//!   means and places (💊, 🔪, 🌉) as their words;
//! * look-alike letters from Cyrillic, Greek and the fullwidth/mathematical blocks read as
//!   their Latin twins (only in words that are mostly Latin, so Russian stays Russian);
//! * digits and symbols standing in for letters inside a word read as letters
//!   (`k1ll`, `su!c!de`, `$uicide`); plain numbers ("2 pills", "10pm") are left alone;
//! * apostrophes dropped (`I'm` → `im`, `don't` → `dont`), other punctuation a space;
//! * a letter repeated three or more times read once (`diiiie` → `die`);
//! * letters spelled out one by one (`s u i c i d e`, `k.i.l.l`) joined.
//!
//! The result is words separated by single spaces, with a space at each end so that
//! patterns can match whole words without look-around.

/// Characters that are invisible or only join others: removed outright.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}'
    )
}

/// A Latin letter that `c` is commonly used to imitate, if any.
fn latin_twin(c: char) -> Option<char> {
    let t = match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' => 'e',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'і' => 'i',
        'ї' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ɡ' => 'g',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ϲ' => 'c',
        'ς' => 's',
        // Latin variants
        'ı' => 'i',
        'ł' => 'l',
        'ß' => 's',
        _ => return None,
    };
    Some(t)
}

/// Fullwidth and mathematical alphanumerics (`ｋｉｌｌ`, `𝐤𝐢𝐥𝐥`) as plain ASCII.
fn plain_ascii(c: char) -> Option<char> {
    let u = c as u32;
    // Fullwidth ASCII block.
    if (0xFF01..=0xFF5E).contains(&u) {
        return char::from_u32(u - 0xFF01 + 0x21);
    }
    // Mathematical alphanumeric symbols: 13 alphabets of 52 letters, then digits.
    if (0x1D400..=0x1D6A3).contains(&u) {
        let i = (u - 0x1D400) % 52;
        return char::from_u32(if i < 26 { 0x41 + i } else { 0x61 + i - 26 });
    }
    if (0x1D7CE..=0x1D7FF).contains(&u) {
        return char::from_u32(0x30 + (u - 0x1D7CE) % 10);
    }
    // Circled and parenthesised letters.
    if (0x24B6..=0x24CF).contains(&u) {
        return char::from_u32(0x61 + u - 0x24B6);
    }
    if (0x24D0..=0x24E9).contains(&u) {
        return char::from_u32(0x61 + u - 0x24D0);
    }
    None
}

/// The word an emoji of means or places stands for ("💊💊 goodnight forever").
fn emoji_word(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{1F48A}' => "pills",
        '\u{1F52A}' | '\u{1F5E1}' => "knife",
        '\u{1F52B}' => "gun",
        '\u{1FA78}' => "blood",
        '\u{1FAA2}' => "rope",
        '\u{26B0}' => "coffin",
        '\u{1FAA6}' => "grave",
        '\u{1F309}' => "bridge",
        '\u{1FA92}' => "razor",
        _ => return None,
    })
}

/// The letter a digit or symbol stands for inside a word (leetspeak).
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        _ => return None,
    })
}

/// Combining marks and the other letters of Indic and Thai scripts that Rust does not
/// count as alphanumeric (viramas, vowel signs): they are part of a word.
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{0483}'..='\u{0489}' | '\u{0591}'..='\u{05BD}'
        | '\u{0610}'..='\u{061A}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}'
        | '\u{0900}'..='\u{0963}' | '\u{0966}'..='\u{0DFF}' | '\u{0E31}' | '\u{0E34}'..='\u{0E3A}'
        | '\u{0E47}'..='\u{0E4E}' | '\u{1AB0}'..='\u{1AFF}' | '\u{20D0}'..='\u{20FF}'
        | '\u{3099}'..='\u{309A}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\u{00B4}'
    )
}

/// Folds `text` into the canonical form described in the module docs.
pub fn normalize(text: &str) -> String {
    // 1. Characters: invisible ones out, look-alikes and fullwidth forms in, lower case.
    let mut chars: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if is_invisible(c) {
            continue;
        }
        if let Some(word) = emoji_word(c) {
            chars.push(' ');
            chars.extend(word.chars());
            chars.push(' ');
            continue;
        }
        let c = plain_ascii(c).unwrap_or(c);
        for l in c.to_lowercase() {
            chars.push(l);
        }
    }
    // 2. Words: split on whitespace and punctuation (apostrophes and leet symbols kept
    //    inside words for now), then fold each.
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, words: &mut Vec<String>| {
        if !current.is_empty() {
            words.push(fold_word(current));
            current.clear();
        }
    };
    for &c in &chars {
        let inside = c.is_alphanumeric()
            || is_mark(c)
            || is_apostrophe(c)
            || leet(c).is_some()
            || c == '*'
            || c == '#';
        if inside {
            current.push(c);
        } else {
            flush(&mut current, &mut words);
        }
    }
    flush(&mut current, &mut words);
    let words = join_spelled_out(words.into_iter().filter(|w| !w.is_empty()).collect());
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for w in words {
        out.push_str(&w);
        out.push(' ');
    }
    out
}

/// The words people mask letters of ("k*ll", "su*cide", "d#e"): a word with masked letters
/// is read as the one of these it fits, letter for letter.
const MASKED_WORDS: &[&str] = &[
    "kill", "killing", "killed", "suicide", "suicidal", "die", "dying", "dead", "death", "kms",
    "kys", "unalive", "myself", "cut", "cutting", "hang", "hanging", "overdose", "self", "harm",
    "noose", "pills",
];

/// `raw` read as a masked word of [`MASKED_WORDS`], if it has a masking character
/// (`*` or `#`) among its letters and fits one.
fn unmask(raw: &str) -> Option<&'static str> {
    let masked = |c: char| c == '*' || c == '#';
    if !raw.chars().any(masked) {
        return None;
    }
    let chars: Vec<char> = raw.chars().filter(|c| !is_apostrophe(*c)).collect();
    MASKED_WORDS.iter().copied().find(|w| {
        w.chars().count() == chars.len()
            && w.chars().zip(&chars).all(|(l, c)| masked(*c) || l == *c)
    })
}

/// One word: look-alikes read as Latin where the word is mostly Latin, leet symbols read
/// as letters where they sit among letters, apostrophes dropped, long letter runs cut.
fn fold_word(raw: &str) -> String {
    if let Some(word) = unmask(raw) {
        return word.to_string();
    }
    let letters = raw.chars().filter(|c| c.is_alphabetic()).count();
    let latin = raw.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let twins = raw.chars().filter(|c| latin_twin(*c).is_some()).count();
    // A word of only look-alikes ("сон") is in its own script; a mix ("kіll") is a disguise.
    let fold_twins = latin > 0 && latin + twins == letters;
    let chars: Vec<char> = raw
        .chars()
        .filter(|c| !is_apostrophe(*c))
        .map(|c| {
            if fold_twins {
                latin_twin(c).unwrap_or(c)
            } else {
                c
            }
        })
        .collect();
    let leet_ok = letters >= 2 && !is_quantity(&chars);
    let mut w = String::with_capacity(raw.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || is_mark(c) {
            w.push(c);
            i += 1;
            continue;
        }
        // A run of digits or symbols: letters in disguise when it sits between letters
        // ("k1ll"), or is one character at the edge of a word of letters ("$uicide").
        let mut j = i;
        while j < chars.len() && !chars[j].is_alphabetic() && !is_mark(chars[j]) {
            j += 1;
        }
        let run = &chars[i..j];
        let before = i > 0;
        let after = j < chars.len();
        let disguise = leet_ok
            && run.iter().all(|c| leet(*c).is_some())
            && ((before && after) || run.len() == 1);
        for &c in run {
            match (disguise, leet(c)) {
                (true, Some(l)) => w.push(l),
                _ if c.is_alphanumeric() => w.push(c),
                _ => {}
            }
        }
        i = j;
    }
    collapse_runs(&w)
}

/// "5pm", "20mg", "3rd", "10x": a number with its unit, never leetspeak.
fn is_quantity(chars: &[char]) -> bool {
    let digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let unit: String = chars[digits..].iter().collect();
    matches!(
        unit.as_str(),
        "am" | "pm"
            | "mg"
            | "g"
            | "kg"
            | "ml"
            | "k"
            | "x"
            | "st"
            | "nd"
            | "rd"
            | "th"
            | "s"
            | "h"
            | "hrs"
            | "min"
            | "mins"
    )
}

/// A letter repeated three or more times is read once ("soooo" → "so", "diiie" → "die").
fn collapse_runs(w: &str) -> String {
    let chars: Vec<char> = w.chars().collect();
    let mut out = String::with_capacity(w.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run = j - i;
        let keep = if run >= 3 && c.is_alphabetic() {
            1
        } else {
            run
        };
        for _ in 0..keep {
            out.push(c);
        }
        i = j;
    }
    out
}

/// Four or more single letters in a row ("s u i c i d e") are one word.
fn join_spelled_out(words: Vec<String>) -> Vec<String> {
    let single = |w: &str| w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let mut j = i;
        while j < words.len() && single(&words[j]) {
            j += 1;
        }
        if j - i >= 4 {
            out.push(words[i..j].concat());
            i = j;
        } else {
            out.push(words[i].clone());
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn disguises_fold_to_plain_words() {
        for (raw, want) in [
            ("I’m gonna K1LL myself!!", " im gonna kill myself "),
            ("kіll myself", " kill myself "), // Cyrillic і
            ("su\u{200B}ic\u{200D}ide", " suicide "),
            ("ｋｉｌｌ ｍｙｓｅｌｆ", " kill myself "),
            ("𝐬𝐮𝐢𝐜𝐢𝐝𝐞", " suicide "),
            ("su!c!de", " suicide "),
            ("$uicidal", " suicidal "),
            ("I wanna diiiie", " i wanna die "),
            ("s u i c i d e", " suicide "),
            ("k.i.l.l myself", " kill myself "),
            ("don't", " dont "),
        ] {
            assert_eq!(normalize(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn masked_letters_are_read_as_the_risk_word_they_fit() {
        assert_eq!(normalize("💊💊 goodnight"), " pills pills goodnight ");
        assert_eq!(
            normalize("I want to k*ll myself"),
            " i want to kill myself "
        );
        assert_eq!(normalize("su*c*de"), " suicide ");
        assert_eq!(normalize("I want to D#E"), " i want to die ");
        // Not a risk word: the mask is dropped, nothing is made up.
        assert_eq!(normalize("g*od *sigh*"), " god sigh ");
    }

    #[test]
    fn numbers_and_other_scripts_are_left_alone() {
        assert_eq!(
            normalize("I took 20 pills at 10pm"),
            " i took 20 pills at 10pm "
        );
        assert_eq!(normalize("at 5pm, 200mg"), " at 5pm 200mg ");
        assert_eq!(normalize("Хочу умереть"), " хочу умереть ");
        assert_eq!(
            normalize("मैं मरना चाहता हूँ"),
            normalize("मैं मरना चाहता हूँ").to_string()
        );
        assert_eq!(normalize("I feel OK"), " i feel ok ");
        assert_eq!(normalize("a b c"), " a b c ");
    }
}
