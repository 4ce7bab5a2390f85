//! The risk lexicon: cues, the figures of speech and negations that are not risk, and
//! the framings (a class, a film, a recovery told as past) that make a bare mention safe.
//!
//! Every pattern is written against [`super::normalize`]'s output: lower case, no
//! apostrophes (`im`, `dont`, `ill`), single spaces, a space at both ends. Placeholders in
//! braces (`{self}`, `{pills}`, …) are expanded by [`expand`] before compiling.
//!
//! A cue has a *force*:
//! * **firm**: read on the message as written, before figures of speech are removed (the
//!   few phrasings that must never be explained away, e.g. "he said he will kill me");
//! * **strong**: read after figures of speech and negations are removed;
//! * **weak**: a bare mention ("suicide", "kills himself") read like a strong cue, but
//!   dropped when the message is framed as study, news, fiction, prevention or grief.
//!
//! The vocabulary here is English as people type it; the words for suicide, wanting to
//! die, self-harm and violence at home in the most spoken other languages are in
//! [`super::languages`].

use super::Category::{self, *};

/// How much context can explain a cue away (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Force {
    Firm,
    Strong,
    Weak,
}

/// One cue: its category, a name that says what fired (logged at debug level, shown by
/// `kindred safety check`), and its pattern.
pub struct Cue {
    pub category: Category,
    pub name: &'static str,
    pub force: Force,
    pub pattern: &'static str,
}

pub(super) const fn cue(
    category: Category,
    name: &'static str,
    force: Force,
    pattern: &'static str,
) -> Cue {
    Cue {
        category,
        name,
        force,
        pattern,
    }
}

use Force::*;

/// Placeholders shared by the patterns.
const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "{self}",
        r"(?:my ?self|my own self|meself|myslef|mysef|myselfe|myselff|mself)",
    ),
    (
        "{themself}",
        r"(?:him ?self|her ?self|them ?selves|them ?self|themselfs|hisself)",
    ),
    (
        "{pills}",
        r"(?:pills?|tablets?|meds|medications?|medicines?|paracetamol|acetaminophen|tylenol|ibuprofen|advil|aspirin|panadol|sleeping pills|sleeping tablets|xanax|benzos?|valium|insulin|opioids?|oxy|oxycodone|fentanyl|antidepressants?|painkillers?|pain killers|prozac|zoloft|lithium|sertraline|amitriptyline|seroquel|melatonin)",
    ),
    (
        "{kill}",
        r"(?:kill|killing|kil|unalive|unaliving|off|offing|end|ending|hang|hanging|shoot|shooting|drown|drowning|poison|poisoning|gas|gassing|delete|deleting|rope|roping|neck|necking|yeet|yeeting|suffocate|suffocating|strangle|strangling|electrocute|behead)",
    ),
    (
        "{hurt}",
        r"(?:hurt|hurting|harm|harming|cut|cutting|cuting|hit|hitting|punch|punching|slap|slapping|bite|biting|choke|choking|burn|burning|starve|starving|punish|punishing|stab|stabbing|scratch|scratching|mutilate|mutilating|bruise|bruising)",
    ),
    (
        "{suicide}",
        r"(?:suicid\w*|sui ?cid\w*|su ?i ?cide\w*|sucid\w*|suicd\w*|suiside\w*|suicde\w*|suecid\w*|sueside\w*|suisid\w*|sewer ?slide\w*|sewerslid\w*|self ?delet\w*)",
    ),
    (
        "{other}",
        r"(?:my (?:best |close |closest |little |big |older |younger |twin |step |)(?:friend|mate|buddy|bestie|bff|sister|sis|brother|bro|mom|mum|mother|dad|father|son|daughter|kid|child|partner|boyfriend|girlfriend|bf|gf|wife|husband|fiance|fiancee|cousin|aunt|uncle|grandma|grandmother|grandpa|grandfather|roommate|flatmate|housemate|classmate|coworker|co worker|colleague|neighbou?r|niece|nephew|ex|teammate|student|patient|client|friends|sibling)|(?:a|one of my|this) (?:friend|classmate|student|coworker|colleague|girl|guy|kid)s?(?: of mine)?|someone (?:i know|i love|close to me|in my class)|somebody i know|he|she|they|hes|shes|theyre)",
    ),
    (
        "{abuser}",
        r"(?:he|she|they|my (?:mums?|moms?|mothers?|dads?|fathers?) (?:boyfriend|girlfriend|partner|husband|wife)|my (?:husband|wife|partner|boyfriend|girlfriend|bf|gf|dad|father|stepdad|step dad|stepfather|mom|mum|mother|stepmom|step mom|stepmother|brother|sister|uncle|aunt|ex|ex husband|ex wife|ex boyfriend|ex girlfriend|fiance|fiancee|parents?|grandfather|grandpa|cousin|roommate|flatmate|boss|landlord|son|daughter|step brother|stepbrother|family|in laws|mother in law|father in law))",
    ),
    (
        "{hit}",
        r"(?:hits?|hitting|beats?|beating|beaten|punch(?:es|ed|ing)?|slap(?:s|ped|ping)?|kick(?:s|ed|ing)?|chok(?:es|ed|ing)|strangl(?:es|ed|ing)|smack(?:s|ed|ing)?|shov(?:es|ed|ing)|throws things at|threw things at|push(?:es|ed|ing)?|shov(?:e|es|ed|ing)|grab(?:s|bed|bing)|drag(?:s|ged|ging)|stalk(?:s|ed|ing)?|rap(?:es|ed|ing)|molest(?:s|ed|ing)?|abus(?:es|ed|ing)|threaten(?:s|ed|ing)?|attack(?:s|ed|ing)?|batter(?:s|ed)?|whips?|whipped|burns?|burned|burnt)",
    ),
    (
        "{now}",
        r"(?:tonight|today|right now|now|in an hour|in a few hours|this weekend|tomorrow|this morning|this evening|soon|before morning|at midnight)",
    ),
    (
        "{want}",
        r"(?:want|wanna|wan|wish|wished|ready|deserve|hope|long|planning|plan|planned|decided|decide|would like|d like|need|needed|going|gonna|about|trying|try|tried|intend|intending|prepared)",
    ),
];

/// Expands the placeholders of a pattern. A word (`\w`) is any run of characters but
/// the space: normalised text has nothing else, and the byte class keeps the compiled
/// automata small (Unicode's `\w` is thousands of ranges).
pub fn expand(pattern: &str) -> String {
    let mut p = pattern.to_string();
    for (name, value) in PLACEHOLDERS {
        p = p.replace(name, value);
    }
    p.replace(r"\w", "[^ ]")
}

/// The cues. Categories are ordered by urgency in [`Category`]; when several fire, the
/// most urgent leads the response.
/// The English cues; [`super::languages::CUES`] has the other languages'. [`cues`]
/// gives both.
pub const CUES: &[Cue] = &[
    // ----- imminent danger: an attempt made or under way, at the place, means in hand now
    cue(
        Imminent,
        "overdose taken",
        Strong,
        r"(?:\b(?:i|ive|i have|i just|just|already|i already)\b(?: \w+){0,3}|^) (?:took|taken|take|swallowed|downed|ate|had|drank|necked)\b(?: \w+){0,4}? (?:bunch|handful|whole|all|too many|lots|lot|entire|box|bottle|pack|packet|packets|load|dozens?|tons?|heaps|\d{2,}|twenty|thirty|forty|fifty|hundred)\b(?: \w+){0,3} {pills}",
    ),
    cue(
        Imminent,
        "overdose taken",
        Strong,
        r"\b(?:i|ive|i have|i just|just|already|i already)\b(?: \w+){0,2} (?:overdosed|od d|odd|oded|took an overdose|taken an overdose|took an od)\b(?: \w+){0,4} (?:just|ago|tonight|today|now|earlier|minutes|hour|hours)\b",
    ),
    cue(
        Imminent,
        "overdose taken",
        Strong,
        r"\b(?:just|already) (?:overdosed|took an overdose|taken an overdose|od d)\b",
    ),
    cue(
        Imminent,
        "overdose taken",
        Strong,
        r"\b(?:took|taken|swallowed|downed) (?:them|it|everything|the lot) all\b|\b(?:took|taken|swallowed|downed) all (?:of )?(?:them|the pills|my pills|my meds)\b",
    ),
    cue(
        Imminent,
        "poison taken",
        Strong,
        r"\b(?:drank|drunk|swallowed|took|drinking|ate) (?:some |a bottle of |the )?(?:bleach|antifreeze|rat poison|poison|weed killer|pesticide|drain cleaner)\b",
    ),
    cue(
        Imminent,
        "bleeding",
        Strong,
        r"\b(?:im|i am|its|it is|cant stop the|wont stop|cut too|cut really|went too) (?:bleeding|deep)\b(?: \w+){0,3}\b(?:lot|badly|heavily|so much|wont stop|cant stop|everywhere|deep)?|\bbleeding (?:a lot|badly|heavily|so much|everywhere)\b|\b(?:wont|cant|doesnt|will not) stop bleeding\b",
    ),
    cue(
        Imminent,
        "cut wrists",
        Strong,
        r"\b(?:cut|slit|slashed|slitting|slashing|opened) (?:my |open my )?(?:wrists?|throat|veins?)\b",
    ),
    cue(
        Imminent,
        "at the place",
        Weak,
        r"\b(?:standing|sitting|stood|sat|im up|up here|currently|right now|here|climbed|climbing|perched|im|i am)\b(?: \w+){0,2} (?:on|at|over|onto) (?:the |a |this |top of the |the top of the )?(?:edge|ledge|roof|rooftop|railing|railings|parapet|bridge|balcony|tracks|train tracks|railway|railway line|rail line|cliff|cliff edge|overpass)\b",
    ),
    cue(
        Imminent,
        "at the place",
        Strong,
        r"\blooking (?:down|over) (?:from|off) (?:the |a |this )?(?:roof|bridge|ledge|edge|balcony|cliff)\b",
    ),
    cue(
        Imminent,
        "about to jump",
        Strong,
        r"\b(?:i|im|i am|i m|ill|i will|ive)\b(?: \w+){0,3} (?:about|going|gonna|ready|want|wanna|decided|deciding|planning) to jump\b(?: (?:off|from|now|tonight|today|in front)\b| $)",
    ),
    cue(
        Imminent,
        "means at hand",
        Strong,
        r"\b(?:i have|ive got|i got|got|bought|buying|purchased|holding|found|tied|tying|made|got out|loaded|loading|have|hid|hidden|hiding|ordered|set up|hung|hanging up)\b(?: \w+){0,3}? (?:a |the |my |some )?(?:rope|noose|gun|pistol|handgun|rifle|shotgun|razor blades?|helium|exit bag|charcoal|nembutal)\b",
    ),
    cue(
        Imminent,
        "means at hand",
        Strong,
        r"\b(?:the )?(?:noose|rope|gun|pistol|pills|blade|razor) (?:is|are) (?:ready|loaded|tied|up|set up|laid out|lined up|in my hand|in front of me|next to me|beside me|on the table)\b",
    ),
    cue(
        Imminent,
        "means at hand",
        Strong,
        r"\b{pills} (?:are |is )?(?:ready|laid out|lined up|counted out|in my hand|in front of me)\b|\b(?:counted out|lined up|laid out) (?:all )?(?:the |my )?{pills}\b",
    ),
    cue(
        Imminent,
        "intent with timing",
        Strong,
        r"\b(?:kill {self}|kms|end it all|end my life|take my (?:own )?life|unalive {self}|(?:want to|wanna|going to|gonna|will|ill|im going to|i am going to|ready to|about to) (?:die|do it|jump|end it|end everything|end things|go through with it))\b(?: \w+){0,2} {now}\b",
    ),
    cue(
        Imminent,
        "doing it now",
        Strong,
        r"\b(?:im|i am|i m) (?:doing|going to do|gonna do) it (?:now|tonight|today|right now|rn)\b|\b(?:ill|i will|im going to|im gonna|i am going to) (?:do it|end it|go through with it) (?:now|tonight|today|right now|rn)\b",
    ),
    cue(
        Imminent,
        "intent with timing",
        Strong,
        r"\b(?:tonight|today) (?:is|will be) the (?:night|day)\b|\b(?:tonight|today|now) i (?:will|am going to|m going to|im going to|end|do it|die|kill)\b|\bthis is (?:my|the) (?:last|final) (?:message|night|day|goodbye|post|text)\b|\bthis is goodbye\b|\bgoodbye (?:forever|cruel world|world|everyone forever)\b",
    ),
    cue(
        Imminent,
        "farewell now",
        Weak,
        r"\bby the time (?:you|anyone|someone|somebody|they) (?:read|reads|see|sees|find|finds|get|gets) this\b|\b(?:wont|will not) be (?:here|around|alive) (?:tomorrow|by morning|much longer|in the morning|after tonight)\b|\b(?:my )?last (?:night|day|hours?) (?:alive|on earth|of my life)\b",
    ),
    // ----- self-harm risk: thoughts, direct or indirect; self-harm; farewell; methods; plans
    cue(SelfHarm, "kill myself", Strong, r"\b{kill} ?{self}\b"),
    cue(SelfHarm, "self-harm", Strong, r"\b{hurt} ?{self}\b"),
    cue(
        SelfHarm,
        "slang",
        Strong,
        r"\b(?:kms|kmsl|ctb|catch the bus|unalive|unaliving|unalived|sewerslide|sewer slide|sewer sliding|self ?delete|self ?deleting|game end|rope ?maxx?ing|toaster bath)\b",
    ),
    cue(
        SelfHarm,
        "slang",
        Strong,
        r"\b(?:i|im|ill|gonna|wanna|want to|going to|should|might|could|about to|just|may as well|might as well)\b(?: \w+){0,2} kys\b",
    ),
    cue(
        SelfHarm,
        "suicidal, first person",
        Strong,
        r"\b(?:im|i am|i feel|i felt|feeling|ive been|been|getting|i get|i got|i was|im getting|becoming|more|very|so|really|pretty|kinda|a bit|quite|always|constantly|extremely|feel|felt) (?:\w+ ){0,2}(?:suicidal|suicidial|sucidal|suicdal)\b",
    ),
    cue(
        SelfHarm,
        "suicide, first person",
        Strong,
        r"\b(?:i|im|ive|i have|i had|me|my own) (?:\w+ ){0,3}(?:suicidal thoughts|suicide thoughts|thoughts of suicide|suicide plan|suicide note|suicide attempt|attempted suicide|attempt suicide|commit suicide|committing suicide|considering suicide|contemplating suicide|thinking about suicide|thinking of suicide|thought about suicide|suicide ideation|suicidal ideation|suicidal urges|suicide urges|suicidal feelings|tried suicide|try suicide)\b",
    ),
    cue(SelfHarm, "suicide mentioned", Weak, r"\b{suicide}"),
    cue(
        SelfHarm,
        "self-harm mentioned",
        Weak,
        r"\bself ?harm\w*|\bself ?injur\w*|\bselfharm\w*|\bself mutilat\w*",
    ),
    cue(
        SelfHarm,
        "self-harm, first person",
        Strong,
        r"\b(?:im|i am|ive been|i have been|been|i|started|start|keep|relapsed|relapse|urge to|urges to|want to|wanna) (?:\w+ ){0,2}(?:self ?harming|self ?harm|selfharming|cutting again|cut again|started cutting|been cutting)\b",
    ),
    cue(
        SelfHarm,
        "self-harm, first person",
        Strong,
        r"\b(?:my|fresh|new|hide my|hiding my|hide the|hiding the) (?:cuts|self ?harm scars|scars from cutting|burns on my arms)\b|\bcutting (?:my|on my) (?:arms?|wrists?|thighs?|legs?|skin|stomach)\b|\b(?:urge|urges) to (?:cut|self harm|hurt {self}|harm {self})\b|\b(?:hit|hitting|punch|punching|bang|banging|slam|slamming) (?:my )?head (?:against|on|into) (?:the |a )?wall\b|\b(?:scratch|scratching|pick|picking) (?:at )?my (?:skin|arms|legs) (?:until|till|so) (?:it|they) bleeds?\b",
    ),
    cue(
        SelfHarm,
        "wants to die",
        Strong,
        r"\b(?:want|wanna|wan|wnat|wamt|watn|wnt|wana|whant|wish|wished|ready|deserve|hope|long|planning|plan|decided|would like|d like|just want|prefer|prepared) (?:to )?(?:just )?(?:die|be dead|not wake up|never wake up|stop existing|not exist|not exist anymore|disappear forever|not be here anymore|not be alive|not be alive anymore|go to sleep forever|sleep forever|cease to exist|vanish forever|be gone forever|end it|end it all|end everything|end my life|take my life|take my own life|fall asleep forever|be with (?:my|the) (?:\w+ )?in heaven)\b",
    ),
    cue(
        SelfHarm,
        "wants to die",
        Strong,
        r"\b(?:id|i would|i d|would|i)? ?rather (?:die|be dead)\b",
    ),
    cue(
        SelfHarm,
        "wants to die",
        Strong,
        r"\bwanting to die\b|\bwish (?:for )?death\b|\bpray(?:ing)? (?:to|that i|for) (?:die|death|not wake up|dont wake up)\b|\blonging for death\b|\bwelcome death\b",
    ),
    cue(
        SelfHarm,
        "wants to die",
        Firm,
        r"\brather (?:die|be dead) than (?:live|living|go on|going on|keep going|keep living|continue|be alive|wake up|face)\b",
    ),
    cue(
        SelfHarm,
        "wish I were dead",
        Strong,
        r"\bwish (?:i|id|that i) (?:was|were|could be|would be|had been|d be)? ?(?:dead|never born|not born|gone|not alive|not here|nonexistent)\b|\bwish i (?:had|d) never been born\b|\bwish i (?:didnt|did not|wouldnt|would not|could) (?:exist|wake up|stop existing|fall asleep and not wake up|go to sleep and not wake up)\b|\bshould never have been born\b|\bshouldnt (?:be|exist|be alive|be here)\b",
    ),
    cue(
        SelfHarm,
        "better off without me",
        Strong,
        r"\bbetter off (?:dead|without me|if i (?:was|were|wasnt|werent|died|was gone|were gone|wasnt here|werent here|wasnt around)|with me gone|when im gone|once im gone|after im gone)\b",
    ),
    cue(
        SelfHarm,
        "better off without me",
        Strong,
        r"\b(?:everyone|everybody|everyoned|they|theyd|theyll|theyre|people|my family|my parents|my kids|the world|my friends|he|she|hed|shed|we|wed|you|youd|you all|the kids)(?: \w+){0,3} (?:be |been )?(?:better|happier|fine|relieved|easier)(?: off)? (?:without me|if i (?:was|were|wasnt|werent|died|was gone|were gone|disappeared)|when im gone|once im gone|with me gone|after im gone)\b",
    ),
    cue(
        SelfHarm,
        "no one would notice",
        Strong,
        r"\b(?:no one|noone|nobody|no body|not a single person|not one person)\b(?: \w+){0,3} (?:notice|care|miss me|miss|cry|come to my funeral|even know)\b(?: \w+){0,5} (?:gone|dead|died|die|disappeared|disappear|vanished|vanish|wasnt here|werent here|wasnt around|not here anymore|killed {self}|stopped existing)\b",
    ),
    cue(
        SelfHarm,
        "no one would notice",
        Strong,
        r"\b(?:no one|noone|nobody|no body)\b(?: would| will| d| is going to| is gonna)?(?: even)? (?:miss me|come to my funeral|notice (?:if|when) i (?:was|were|am) gone)\b",
    ),
    cue(
        SelfHarm,
        "burden",
        Strong,
        r"\b(?:im|i am|im just|im only|i feel like|feel like|i feel|ive become|i have become|i became|being|i will always be|ill always be|i am just|always been|im always)\b(?: \w+){0,3} burden(?: to| on| for)? (?:everyone|everybody|my (?:family|parents|friends|kids|children|husband|wife|partner|mom|mum|dad|loved ones|sister|brother)|the people (?:i love|around me)|people|others|them all|all of them|the world|society|anyone|them|him|her|everyone around me)\b|\b(?:im|i am|im just|i feel like|feel like|ive become|i have become)\b(?: \w+){0,3} burden(?: and| so| that|$| to (?:everyone|all))",
    ),
    cue(
        SelfHarm,
        "nothing to live for",
        Strong,
        r"\bnothing (?:left )?to live for\b|\bno (?:reason|point|purpose|will|motivation|desire) (?:to|in|for|of) (?:live|living|go on|going on|keep going|being alive|carrying on|carry on|exist|existing|wake up|waking up|life|stay alive|staying alive|stay|staying|continue|continuing)\b|\b(?:lost|losing) (?:the|my|all) will to live\b|\bno will to live\b",
    ),
    cue(
        SelfHarm,
        "nothing to live for",
        Strong,
        r"\b(?:whats|what is|whats even|what is even|theres no|there is no|i see no|i dont see (?:the|any)|cant see (?:the|any)) point (?:of|in|to)? ?(?:living|life|going on|being alive|existing|carrying on|staying alive|continuing|waking up|anything anymore|any of it anymore)\b",
    ),
    cue(
        SelfHarm,
        "life not worth living",
        Strong,
        r"\b(?:life|living|my life|being alive|existing|it all|this life)\b(?: \w+){0,2} (?:isnt|is not|aint|not|no longer|never|will never be) (?:even )?worth (?:living|it|it anymore|anything|the pain|the effort)\b",
    ),
    cue(
        SelfHarm,
        "tired of living",
        Strong,
        r"\b(?:tired|sick|exhausted|done|finished|over|fed up) (?:of|with) (?:living|being alive|life|existing|my life|this life|breathing|waking up|being here|it all|everything and everyone)\b",
    ),
    cue(
        SelfHarm,
        "tired of living",
        Strong,
        r"\b(?:dont|do not|no longer|dont even|do not even|never) (?:want|wanna|wish) (?:to )?(?:live|be alive|exist|wake up|go on|keep living|keep going|continue living|stay alive|be here anymore|be here any more|be around anymore|breathe anymore|see tomorrow|see another day)\b",
    ),
    cue(
        SelfHarm,
        "cannot go on",
        Strong,
        r"\b(?:cant|cannot|can not|unable to|dont know how to|dont think i can|not sure i can) (?:go on|keep going|carry on|keep living|keep doing this|do life|live like this|handle life|continue living|stay alive|survive this|hold on much longer|hold on any longer)\b",
    ),
    cue(
        SelfHarm,
        "ending it",
        Strong,
        r"\b(?:end|ending|ended|finish|finishing) (?:it all|everything|my life|my own life|it now|it tonight|it today|my existence|it for good|the pain for good|my suffering for good|things for good)\b|\b(?:take|taking|took) (?:my|my own) life\b|\bwant (?:it all|everything|this|the pain|it) to (?:end|stop) (?:forever|for good|permanently)\b|\b(?:want|wish) (?:it all|everything) (?:would|to|could) (?:just )?end\b",
    ),
    cue(
        SelfHarm,
        "sleep and not wake up",
        Strong,
        r"\b(?:sleep|go to sleep|fall asleep|close my eyes)\b(?: \w+){0,2} (?:and )?(?:never|not) (?:wake|waking|open them) ?(?:up|again)?\b|\b(?:hope|hoping|pray|praying|wish) (?:that )?i (?:dont|never|wont|do not|will not|dont ever) wake up\b",
    ),
    cue(
        SelfHarm,
        "thinking about dying",
        Strong,
        r"\b(?:keep|been|always|constantly|cant stop|often|sometimes i|i|im|i am|i m|ive been|started|was|keeps|still|seriously) (?:thinking|think|thought|dreaming|fantasi[sz]ing|obsessing|considering|contemplating) (?:about|of)? (?:dying|being dead|not being here|not existing|not being alive|ending it|ending my life|ending everything|killing {self}|hurting {self}|my own death|my death|death a lot|how to die|ways to die|disappearing forever|jumping|the easiest way out|a way out)\b",
    ),
    cue(
        SelfHarm,
        "wants to disappear",
        Strong,
        r"\b(?:want|wanna|wish i could|just want|i want|should|could|i could|need to|going to|gonna|ready to) (?:to )?(?:just )?(?:disappear|vanish|fade away)(?: forever| for good| from this world| from existence| from the face of the earth| permanently| completely| and never come back| $)|\b(?:want|wanna|wish i could|just want|i want|should|could) (?:to )?(?:just )?(?:not exist|cease to exist|stop existing)\b",
    ),
    cue(
        SelfHarm,
        "ending it",
        Strong,
        r"\b(?:gonna|going to|want to|wanna|ready to|about to|decided to|will|ill|i will|need to|have to|might|could|should|should just|may as well|might as well) (?:just )?end it(?: all| now| tonight| today| soon| for good| $)|\b(?:easier|better|best) if i (?:just )?(?:ended it|end it|died|was dead|were dead|wasnt here|werent here|killed {self}|wasnt alive|didnt wake up|disappeared|was gone|were gone)\b|\bwant out of (?:this |my )?life\b|\b(?:death|dying|suicide|ending it|killing {self}|ending my life) (?:is|seems|feels|looks) (?:like )?(?:the|my) (?:only|best|easiest|last|one) (?:way out|option|answer|solution|choice|escape|way)\b|\bonly way out is (?:to die|death|dying|suicide)\b",
    ),
    cue(
        SelfHarm,
        "attempt",
        Strong,
        r"\b(?:i|ive|i have|i had|my) (?:\w+ ){0,2}(?:attempted|tried to kill {self}|tried to end my life|tried to take my (?:own )?life|tried to die|tried to hang {self}|tried to overdose|tried to od|tried to unalive|attempt|attempts)\b(?: \w+){0,2}(?: suicide| on my life)?",
    ),
    cue(
        SelfHarm,
        "overdose",
        Strong,
        r"\b(?:i|ive|i have|i had|i once|i almost|i nearly)\b(?: \w+){0,2} (?:overdosed|od d|oded|took an overdose)\b|\b(?:want|wanna|going|gonna|planning|plan|thinking about|think about|tempted) (?:to )?(?:overdose|od|take an overdose)\b",
    ),
    cue(
        SelfHarm,
        "overdose",
        Strong,
        r"\b(?:take|taking|swallow|swallowing|down|downing) (?:all|every one|the whole bottle|a whole bottle|the whole box|the whole pack) (?:of )?(?:my |the |these |those )?{pills}\b",
    ),
    cue(
        SelfHarm,
        "hanging",
        Strong,
        r"\bhang(?:ing)? {self}\b|\b(?:tie|tied|tying|make|made|making) (?:a |the )?noose\b",
    ),
    cue(
        SelfHarm,
        "jumping",
        Strong,
        r"\b(?:jump|jumping|leap|leaping|throw {self}|throwing {self}) (?:off|from) (?:a |the |my |this |that )?(?:\w+ )?(?:bridge|building|roof|rooftop|cliff|balcony|window|tower|parking garage|car park|overpass|ledge|skyscraper|\d+\w* floor)\b",
    ),
    cue(
        SelfHarm,
        "in front of a train",
        Strong,
        r"\b(?:jump|jumping|step|stepping|walk|walking|throw {self}|throwing {self}|lie|lying|lay) (?:in front of|under|onto|on) (?:a |the )?(?:train|bus|truck|lorry|car|tracks|subway|metro|traffic)\b|\bdrive (?:my car )?(?:off|into) (?:a |the )?(?:cliff|bridge|wall|tree|oncoming traffic|river|lake)\b|\bcrash my car on purpose\b",
    ),
    cue(
        SelfHarm,
        "farewell",
        Strong,
        r"\b(?:i|ive|im|i have|i am|i just|i already)\b(?: \w+){0,2} (?:wrote|writing|written|write|left|leaving|leave|finished|finishing|drafted|drafting|recorded|recording)\b(?: \w+){0,3} (?:goodbye|good bye|farewell|suicide|final|last|parting) (?:letters?|notes?|messages?|videos?|posts?|texts?|emails?)\b|\bmy (?:goodbye|good bye|farewell|suicide|final|parting) (?:letters?|notes?|messages?|videos?)\b|^ (?:wrote|writing|written|left|finished) (?:\w+ ){0,3}(?:goodbye|farewell|suicide|final) (?:letters?|notes?|messages?|videos?)\b",
    ),
    cue(
        SelfHarm,
        "farewell",
        Strong,
        r"\b(?:said|saying|say) my (?:last |final )?goodbyes?\b|\b(?:said|saying|say) (?:my )?(?:last |final )?goodbyes? to (?:everyone|everybody|my family|the people i love|my friends|the world|you all|my kids|my children|my parents)\b|\b(?:getting|got|putting|put|set|setting) my affairs in order\b|\b(?:take|taking|look after|looking after) care of (?:my|the) (?:\w+ )?(?:for me )?(?:when|after|once) im (?:gone|dead|not here|no longer here)\b|\b(?:when|after|once) im (?:dead|no longer here|no longer around|not here anymore|not around anymore)\b",
    ),
    cue(
        SelfHarm,
        "giving things away",
        Weak,
        r"\b(?:gave|giving|give|given) (?:away )?(?:all |most )?(?:of )?my (?:things|stuff|belongings|possessions|valuables|pets?|cat|dog|guitar|clothes|games|books|everything)(?: away)?\b|\b(?:wont|will not|dont|do not|wouldnt|no longer) need (?:it|them|these|those|this|my things|my stuff|anything|any of it|any of this) (?:anymore|any more|where im going|after tonight|soon|much longer)\b",
    ),
    cue(
        SelfHarm,
        "method seeking",
        Strong,
        r"\bhow (?:many|much)\b(?: \w+){0,4} (?:{pills}|mg|milligrams|grams|of)\b(?: \w+){0,6} (?:die|dying|kill|lethal|fatal|deadly|overdose|od|end it|end my life|not wake up|never wake up|would it take|does it take|do i need|to stop my heart|is too much|is deadly|is lethal)\b",
    ),
    cue(
        SelfHarm,
        "method seeking",
        Strong,
        r"\b(?:most |least |a |the )?painless (?:way|ways|method|methods|death|suicide|way out)\b|\b(?:quick|quickest|fast|fastest|easy|easiest|best|surest|sure|reliable|effective|most effective|most reliable|simplest|peaceful|peaceful|certain) (?:and painless )?(?:way|ways|method|methods) (?:to|of) (?:die|dying|kill|end it|end my life|end things|commit|suicide|unalive|go|not wake up|overdose|od)\b",
    ),
    cue(
        SelfHarm,
        "method seeking",
        Strong,
        r"\b(?:lethal|fatal|deadly|toxic) (?:dose|amount|dosage|quantity|level) of\b|\b(?:how|what) (?:long|much time) (?:does it|would it|will it|until it|until you|before you|before i) (?:take (?:to )?)?(?:die|bleed out|drown|suffocate|lose consciousness|pass out and die|stop breathing)\b|\bhow (?:high|tall|far) (?:does|do|would|should|must) (?:a |the |you )?(?:building|bridge|fall|drop|jump|floor|roof)\b(?: \w+){0,4} (?:die|fatal|kill|to be sure|be)\b|\bhow (?:deep|hard|far) (?:should|do|does|would|to|must|can)\b(?: \w+){0,4} (?:cut|slit|stab)\b",
    ),
    cue(
        SelfHarm,
        "method seeking",
        Strong,
        r"\bhow (?:to|do (?:you|i|people)|can i|could i|would i|should i) (?:tie a noose|make a noose|hang (?:yourself|{self}|oneself)|slit|overdose|od on|kill (?:yourself|{self}|oneself)|commit suicide|unalive|end (?:your|my) life|die painlessly|die peacefully|die quickly|die in my sleep|poison (?:yourself|{self}))\b|\b(?:where|how) (?:can i|to|do i|could i) (?:buy|get|find|order) (?:a gun|a rope|rope|a noose|poison|barbiturates|nembutal|helium|cyanide|enough pills|sleeping pills without|lethal)\b|\b(?:what|which) (?:pills|drugs|medication|medicine|poison|household chemicals|chemicals)\b(?: \w+){0,3} (?:would|will|can|could) (?:kill|end|stop my heart)\b|\bwhat happens if (?:i|you|someone) (?:take|takes|swallow|swallows|drink|drinks) (?:all|a whole|an entire|the whole|a bottle of|a box of|\d+|twenty|thirty|fifty) (?:of )?(?:my |the |your )?{pills}\b|\b(?:can|will|would|could) (?:\d+|twenty|thirty|forty|fifty|a hundred|a bottle of|a whole bottle of|all my|all of my|a box of) {pills} kill (?:me|you|someone|a person)\b|\b(?:researching|researched|looking up|looked up|googling|googled|searching|searched|reading about) (?:\w+ )?(?:ways|how|methods|the best way|the easiest way|painless ways) (?:to|of) (?:die|dying|kill|end|overdose|hang|suicide|commit)\b",
    ),
    cue(
        SelfHarm,
        "plans",
        Strong,
        r"\b(?:planned|planning|plan|figured out|worked out|decided|know|knew) (?:out )?(?:exactly )?(?:how|when|where|the day|the date|the time|the method|the way) (?:ill|i will|im going to|im gonna|i am going to|to|i|i would|id)\b(?: \w+){0,2} (?:do it|die|end it|end my life|kill {self}|go through with it|go|unalive|take my life|jump|overdose)\b|\b(?:picked|chosen|chose|set|decided on) (?:a |the )?(?:date|day|time|method|place|spot)\b(?: \w+){0,3} (?:to die|to do it|to end it|to kill {self}|to go through with it|for my suicide|to jump)\b|\b(?:saving|stockpiling|hoarding|collecting|stashing|stockpiled|hoarded|saved up|stashed|storing) (?:up )?(?:all )?(?:my |the |some |these )?{pills}\b|\b{pills} (?:ive|i have|i) (?:been )?(?:saved|saving|stockpiled|stockpiling|hoarding|hoarded|collected|collecting|stashed)\b|\b(?:have|got|made|making) (?:a |the )?plan (?:to (?:die|end|kill|take)|for (?:how|when) (?:to|ill|i) (?:die|end|kill|do it))\b|\bi have a plan\b(?: \w+){0,3} (?:and|to|for)? ?(?:the|a)? ?(?:means|pills|rope|gun|date)\b",
    ),
    cue(
        SelfHarm,
        "not sure I can stay safe",
        Firm,
        r"\bnot sure (?:if |whether |that )?i (?:wont|will not|can keep from|can stop {self} from|can stay safe|can keep {self} safe|can resist)\b|\b(?:cant|cannot|dont think i can|dont know if i can) (?:keep|stay|be) (?:{self} )?safe\b|\bafraid (?:that )?(?:i|ill|i will|i might|im going to) (?:\w+ ){0,2}(?:kill|hurt|harm|cut|do something to) {self}\b|\bscared (?:of what i might do to {self}|(?:that )?(?:i|ill|i will|i might|im going to) (?:\w+ ){0,2}(?:kill|hurt|harm|cut|do something to) {self})\b",
    ),
    cue(
        SelfHarm,
        "wishes for death",
        Strong,
        r"\b(?:i|im|ive|id|ill|i m)\b(?: \w+){0,4} (?:want|wanna|wish|wishing|wished|hope|hoping|pray|praying|ready|planning|plan|decided|thinking|think|considering|need|should|would rather|d rather)\b(?: \w+){0,4} (?:die|dying|be dead|were dead|was dead|not wake up|never wake up|sleep forever|disappear forever|be gone forever|stop existing|not exist|not be here anymore|not be alive|not be alive anymore|end my life|end it all|kill {self})\b",
    ),
    cue(
        SelfHarm,
        "wishes for death",
        Strong,
        r"\b(?:wish|wishing|hope|hoping|pray|praying|want)\b(?: \w+){0,3} (?:a car|a bus|a train|a truck|lightning|something|someone) (?:would|will|could|to) (?:hit|kill|run) (?:me|over me)\b|\b(?:hope|hoping|wish|wishing|pray|praying)\b(?: \w+){0,3} (?:get|got|have|had|die in|were in|was in) (?:into )?(?:an? )?(?:accident|crash|car crash|fatal)\b|\b(?:so|and) (?:it|this|everything) (?:would|will|could) (?:all )?(?:stop|end) (?:forever|for good)?\b|\b(?:dont|do not|no longer|not sure i|dont think i|do not think i|dont know if i|never)\b(?: \w+){0,3} (?:want|wanna|wish) (?:to )?(?:be alive|live|exist|stay alive|keep living|wake up)(?: anymore| any more)?\b",
    ),
    cue(
        SelfHarm,
        "worthless to the world",
        Strong,
        r"\b(?:taking up space|waste of (?:space|oxygen|air|life)|dont deserve to (?:live|be alive|exist|be here)|do not deserve to (?:live|be alive|exist)|world (?:would be|is) better without me|(?:favou?r|relief|easier for everyone|happier)\b(?: \w+){0,3} if i (?:just )?(?:disappeared|died|was gone|were gone|wasnt here|werent here|killed {self}|ended it|was dead|were dead))\b|\bbetter off $",
    ),
    cue(
        SelfHarm,
        "contemplating a means",
        Strong,
        r"\b(?:looking|looked|staring|stared) at (?:bridges|the bridge|ropes|the rope|the pills|my pills|tall buildings|the tracks|train tracks|the knife|the razor|the gun|the balcony|the window)\b(?: \w+){0,3} (?:and )?(?:thinking|wondering|imagining|planning)?|\bis (?:drowning|hanging|overdosing|bleeding out|jumping|suffocating|an overdose|slitting your wrists|dying|death by \w+) (?:\w+ )?(?:painful|quick|fast|peaceful|painless|slow)\b|\b(?:thinking|think|thought) (?:of|about) rop(?:e|ing)\b|\b(?:wanna|want to|gonna|going to) rope\b",
    ),
    cue(
        Imminent,
        "means at hand, ready",
        Strong,
        r"\b(?:pills|tablets|meds|razor|blade|knife|noose|rope|gun|pistol|bleach|poison|medicine cabinet)\b(?: \w+){0,6} (?:ready|im ready|i am ready|right now|now|tonight|against my (?:wrist|throat|neck|arm|head|skin)|to my (?:wrist|throat|neck|head)|in my hand|hanging|done|its time|goodbye)\b|\b(?:ready|right now|tonight|against my (?:wrist|throat|neck|arm|head)|in my hand)\b(?: \w+){0,4} (?:pills|tablets|meds|razor|blade|knife|noose|rope|gun|pistol|bleach|poison)\b|\b(?:in the (?:bath|bathtub|tub|shower)|in the garage|in my car) with (?:a |the |my )?(?:razor|blade|knife|pills|engine running|gun|rope|hose)\b|\b(?:in|inside) (?:my |the )?car (?:\w+ ){0,4}(?:engine running|exhaust|hose|carbon monoxide)\b|\bhose (?:connected|attached|from the exhaust|to the exhaust)\b|\b(?:plastic bag|bag) and (?:tape|a belt|a cord)\b(?: \w+){0,6} (?:ready|tonight|now|to go)?|\b(?:jumped|climbed|went) (?:over )?(?:the )?(?:fence|railing|barrier) (?:at|on|of) the (?:dam|bridge|cliff|roof|overpass)\b|\bengine running\b(?: \w+){0,4} (?:garage|closed)\b|\b(?:took|taken|swallowed|downed|ate) (?:everything|all) (?:in|from) (?:the |my )?(?:medicine cabinet|cabinet|bathroom|drawer|pill box|pillbox)\b|\b(?:drank|drunk|downed) (?:a |the )?(?:whole|entire|full|half a|a lot of|lots of)? ?(?:bottle|lot)\b(?: \w+){0,4} (?:and )?(?:took|taken|swallowed) (?:my |all my |the |some |a bunch of )?(?:pills|tablets|meds|sleeping pills)\b",
    ),
    cue(
        Imminent,
        "at the place, ready",
        Strong,
        r"\b(?:roof|rooftop|ledge|edge|bridge|platform|tracks|railing|parking garage|car park|cliff|balcony|top of the building|overpass)\b(?: \w+){0,6} (?:looking down|waiting to jump|about to jump|going to jump|gonna jump|to jump|ready|im ready|im done|i m done|right now|its time|goodbye|going through with it|no way back|this is it|cant do this anymore|want to jump|will jump)\b|\b(?:writing|typing|texting) (?:this|you) from (?:the )?(?:roof|bridge|ledge|edge|platform|cliff|top of)\b|\bwaiting (?:for the train )?to jump\b",
    ),
    cue(
        Imminent,
        "goodbye now",
        Strong,
        r"\btell (?:my|them|her|him|everyone|all of them|my family) (?:\w+ ){0,2}(?:that )?i (?:love|loved|am sorry|m sorry|im sorry|said goodbye)\b|\bthis is the last time (?:anyone|you|youll|you will|they|people) (?:will )?(?:hear|see|hears|sees) (?:from )?me\b|\b(?:finally|tonight|today|now) (?:im |i am |i m |ill |i will )?(?:finally )?(?:going through with it|doing it|going to do it)\b|\bgoing through with it (?:tonight|today|now|finally)\b",
    ),
    // General families: what a harm does to the body, means at the neck or the skin, death
    // spoken of as a relief. Written as kinds of phrasing, not sentences.
    cue(
        SelfHarm,
        "injuring own body",
        Strong,
        r"\b(?:i|ive|im|i have|i been|i keep|keep)\b(?: \w+){0,3} (?:cut|cuts|cutting|carve|carved|carving|burn|burned|burnt|burning|slash|slashed|slashing|scratch|scratched|scratching|stab|stabbed|stabbing|bang|banged|banging|punch|punched|punching|hit|hitting|bruise|bruising|bite|biting|pierce|scrape|scraping|scald|scalding|hurt|hurting) (?:into |at |on )?my (?:own )?(?:skin|arm|arms|wrist|wrists|thigh|thighs|leg|legs|stomach|belly|chest|hip|hips|body|hands?|fingers|face|head)\b(?: \w+){0,4}",
    ),
    cue(
        Imminent,
        "means at the body",
        Strong,
        r"\b(?:rope|noose|belt|cord|cable|scarf|tie|wire|bag)\b(?: \w+){0,3} (?:around|round|over) my (?:neck|head|throat)\b|\b(?:blade|razor|knife|glass)\b(?: \w+){0,4} (?:right here|in my hand|on my wrist|against my|at my (?:wrist|throat|neck))\b|\bmy hands are shaking\b(?: \w+){0,6} (?:blade|razor|knife|pills|gun|rope)\b",
    ),
    cue(
        SelfHarm,
        "death as relief",
        Strong,
        r"\b(?:dying|death|being dead|not existing|not being here|not being alive|the end|ending it|suicide|killing {self})\b(?: \w+){0,4} (?:brings me|gives me|would bring|would give|feels like|sounds like|seems like|would be)? ?(?:peace|relief|comfort|calm|a relief|so peaceful|peaceful|appealing|tempting|nice|a release|freedom|an escape|the answer)\b|\b(?:if|when) i (?:died|die|was dead|were dead|didnt wake up|dont wake up|was gone)\b(?: \w+){0,4} (?:relieved|relief|wouldnt mind|would not mind|wouldnt care|okay with it|ok with it|fine with it|happy|glad|be better|at peace|no one would|nobody would)\b|\bbetter off (?:not existing|not being here|not being alive|not alive|not around|gone|nonexistent|never born)\b|\b(?:planning|plan|planned|picture|picturing|imagine|imagining|thinking about|think about) my (?:own )?funeral\b|\b(?:had|have) (?:enough|it) (?:of|with) (?:living|life|being alive|existing)\b|\bno (?:\w+ ){0,2}reason (?:to|for) (?:keep going|keep living|go on|stay|staying|continue|be here|live|living|stick around)\b|\b(?:cant|cannot|dont|do not) (?:see|find|think of|have)\b(?: \w+){0,2} (?:reason|point|purpose) (?:to|in|for) (?:keep going|keep living|go on|going on|live|living|stay|being here|continue|carrying on)\b|\b(?:fighting|struggling|trying) to stay alive\b|\b(?:want|wanna|going|gonna|might|could|should|ready) to commit(?: $| tonight| soon| today| now| suicide)",
    ),
    cue(
        Imminent,
        "at the place, going",
        Strong,
        r"\b(?:top floor|rooftop|roof|ledge|window ledge|bridge|balcony|cliff|platform|tracks)\b(?: \w+){0,6} (?:window is open|im going|i m going|im jumping|here i go|letting go|let go|its over)\b|\b(?:walk|walking|swim|swimming|drive|driving) (?:into|out into|off into) (?:the )?(?:sea|ocean|lake|river|traffic|water|waves)\b(?: \w+){0,3}(?: tonight| now| today| and never come back| and not come back| until)?",
    ),
    cue(
        SelfHarm,
        "method seeking",
        Strong,
        r"\b(?:does|do|would|will|is) (?:slitting|cutting|hanging|drowning|overdosing|jumping|shooting) (?:your|my|ones|a persons)? ?(?:wrists?|throat|self|yourself|{self})? ?(?:hurt|painful|quick|work|kill)\b",
    ),
    cue(
        Imminent,
        "farewell apology",
        Strong,
        r"\bi love (?:you all|you guys|you both|everyone|all of you|you so much)\b(?: \w+){0,4} (?:im sorry|i m sorry|i am sorry|sorry for everything|forgive me|goodbye|bye forever|dont be sad|its not your fault)\b|\b(?:im sorry|i am sorry) for everything\b(?: \w+){0,4} (?:goodbye|bye|love you|forgive me)\b|\bplease forgive me\b(?: \w+){0,4} (?:goodbye|i love you|take care of)\b",
    ),
    cue(
        SelfHarm,
        "plans",
        Strong,
        r"\bmy plan is to (?:do it|die|end it|end my life|kill {self}|jump|overdose|go through with it)\b|\b(?:save|saving|keep|keeping|collect|collecting) (?:them|my meds|my pills|the pills|my tablets) (?:up )?(?:for later|for when|so i can|until i have enough)?\b(?: \w+){0,3} (?:enough|overdose|all at once|end it|die)\b|\bstopped taking my (?:meds|pills|medication|tablets) (?:so i can|to) (?:save|stockpile|collect|keep) them\b|\bhow long\b(?: \w+){0,4} (?:bleed out|to die|drown|suffocate|lose consciousness|stop breathing)\b",
    ),
    cue(
        SelfHarm,
        "farewell",
        Strong,
        r"\b(?:im|i am|i m)? ?(?:not|wont|will not|wont be|not going to) (?:going to )?be (?:around|here|alive) (?:much|for much|for very|a lot|that much) longer\b|\b(?:god|the lord|death|the universe) (?:to )?(?:would |will |just )?takes? me\b|\bno (?:point|use|sense) (?:in )?(?:carrying on|going on|living|trying anymore|continuing|being alive|waking up)\b",
    ),
    cue(
        SelfHarm,
        "worthless to the world",
        Strong,
        r"\b(?:the world|everyone|my family|nobody|no one|this world)\b(?: \w+){0,2} (?:doesnt|does not|dont|wont|would not|wouldnt) (?:need|miss|want) me\b(?: \w+){0,3}(?: anymore| around| here| alive| at all)?",
    ),
    cue(
        SelfHarm,
        "in front of a train",
        Strong,
        r"\b(?:drive|driving|steer|steering|crash|crashing|swerve|swerving) (?:my car )?(?:off the road|off a cliff|off the bridge|into (?:a|the|oncoming) (?:tree|wall|truck|lorry|traffic|river|lake|barrier|pole))\b",
    ),
    // ----- someone else at risk
    cue(
        OtherAtRisk,
        "someone else is suicidal",
        Strong,
        r"\b{other}\b(?: \w+){0,3} (?:is|s|has been|seems|sounds|feels|was|been|keeps|is being|are|re|feeling|gets|got|became|becoming|getting) (?:\w+ ){0,2}(?:suicidal|suicidial|sucidal)\b",
    ),
    cue(
        OtherAtRisk,
        "someone else is suicidal",
        Strong,
        r"\b{other}\b(?: \w+){0,5} (?:going to|gonna|gon|wants to|want to|wanna|will|would|plans to|planning to|trying to|tried to|threatening to|threatened to|threatens to|talking about|talks about|talked about|keeps talking about|thinking about|thinks about|thought about|said (?:he|she|they) (?:will|would|wants to|is going to|was going to|might)|might|could|may|about to|decided to|attempted to)\b(?: \w+){0,3} (?:kill|killing|end|ending|hurt|hurting|harm|harming|cut|cutting|unalive|unaliving|off|offing|hang|hanging|shoot|shooting|overdose|overdosing|jump|jumping|take|taking|drown|drowning|poison) ?(?:{themself}|(?:his|her|their) (?:own )?life|it all|everything|off (?:a|the) (?:bridge|building|roof)|suicide|an overdose)\b",
    ),
    cue(
        OtherAtRisk,
        "someone else is suicidal",
        Weak,
        r"\b(?:kill|kills|killing|hurt|hurts|hurting|harm|harms|harming|cut|cuts|cutting|hang|hangs|hanging|shoot|shoots|shooting|starve|starves|starving|unalive|unalives|unaliving|end|ends|ending|drown|drowns|drowning|off|offs) ?{themself}\b",
    ),
    cue(
        OtherAtRisk,
        "someone else wants to die",
        Strong,
        r"\b{other}\b(?: \w+){0,3} (?:wants to die|wanna die|want to die|wanted to die|doesnt want to live|dont want to live|does not want to live|wants to end (?:it|it all|everything|(?:his|her|their) life)|has nothing to live for|said (?:they|he|she) (?:want|wants|wanted) to die|is self harming|self harms|has been self harming|has been cutting|is cutting again|started cutting|cuts (?:him|her|them)self|took (?:a bunch of|all|a lot of|a handful of|too many|lots of|a whole bottle of|the whole bottle of|an overdose of|all (?:his|her|their)) (?:\w+ )?{pills}|took an overdose|overdosed|od d|is planning (?:his|her|their) suicide|wrote a (?:goodbye|suicide) (?:note|letter)|left a (?:goodbye|suicide) note|posted a goodbye|(?:is|has been|been|keeps|started|was) giving away (?:all )?(?:of )?(?:his|her|their) (?:things|stuff|belongings|possessions)|(?:wont|will not|isnt going to|is not going to) be (?:around|here) (?:much|for much) longer|is on the (?:roof|bridge|ledge|edge)|is standing on (?:the |a )?(?:roof|bridge|ledge|edge)|stopped taking (?:his|her|their) meds and talks about dying)\b",
    ),
    cue(
        OtherAtRisk,
        "someone else wants to die",
        Strong,
        r"\b{other}\b(?: \w+){0,4} (?:be )?(?:better off|happier) (?:without (?:him|her|them)|if (?:he|she|they) (?:was|were|wasnt|werent) (?:gone|dead|here|around))\b|\b{other}\b(?: \w+){0,2} (?:sent|posted|texted|left|wrote|recorded) (?:me |us )?(?:a |his |her |their )?(?:goodbye|farewell|suicide|final) (?:message|note|text|post|letter|video)s?\b",
    ),
    cue(
        OtherAtRisk,
        "someone else is suicidal",
        Strong,
        r"\b{other}\b(?: \w+){0,3} (?:talking|talks|talked|joking|jokes|joked|posting|posts|posted|writing|writes|wrote|thinking|thinks|thought|obsessing) about (?:suicide|killing (?:him|her|them)sel\w*|dying|ending (?:it|his life|her life|their life|it all)|wanting to die|not wanting to live|unaliving)\b",
    ),
    cue(
        OtherAtRisk,
        "someone else wants to die",
        Strong,
        r"\b{other}\b(?: \w+){0,4} (?:wish|wishes|wished|wants|wanted|hopes|hoped|says|said|keeps saying) (?:that )?(?:she|he|they|s|shes|hes|theyre)? ?(?:\w+ ){0,2}(?:was dead|were dead|is dead|be dead|could die|would die|could disappear|didnt exist|was never born|had never been born|wasnt alive|not to wake up|wouldnt wake up)\b",
    ),
    cue(
        OtherAtRisk,
        "worried about someone",
        Strong,
        r"\b(?:worried|scared|afraid|terrified|frightened|concerned) (?:that |about |for )?(?:\w+ ){0,3}(?:might|will|could|is going to|is gonna|may|would) (?:\w+ ){0,2}(?:kill|hurt|harm|cut|end|unalive) ?(?:{themself}|(?:his|her|their) (?:own )?life)\b|\b(?:his|her|their) (?:suicide|goodbye|farewell) (?:note|letter|message|post)\b|\b(?:he|she|they) (?:sent|posted|texted) (?:me )?(?:a )?(?:goodbye|farewell|suicide) (?:message|note|text|post|letter)\b",
    ),
    // ----- not safe at home: abuse and violence against the person
    cue(
        Abuse,
        "threatened with death",
        Firm,
        r"\b{abuser}\b(?: \w+){0,5} (?:said|says|threatened|threatens|told me|keeps saying|swore|promised|screamed|yelled|keeps threatening)\b(?: to)?(?: that)?(?: (?:he|she|they|hell|shell|theyll|hed|shed|theyd))?(?: will| would| is going to| was going to| is gonna| gonna| ll| d)? (?:kill|hurt|beat|rape|murder|break my \w+|shoot|stab|end) (?:me|us|my kids|my children|my mom|my family)\b",
    ),
    cue(
        Abuse,
        "afraid of being hurt",
        Firm,
        r"\b(?:scared|afraid|terrified|frightened|fear|fearing|worried)\b(?: that| of what)? {abuser}\b(?: \w+){0,2} (?:will|is going to|gonna|might|would|could|is gonna|may|s going to|will actually|might actually|is gonna actually|is about to|will really) (?:\w+ )?(?:kill|hurt|hit|beat|rape|strangle|choke|stab|shoot|attack) (?:me|us)\b",
    ),
    cue(
        Abuse,
        "hurt by someone",
        Strong,
        r"\b{abuser}\b(?: \w+){0,6} {hit} (?:\w+ ){0,4}(?:me|us)\b",
    ),
    cue(
        Abuse,
        "hurt by someone",
        Strong,
        r"\b{abuser}\b(?: \w+){0,4} (?:slammed|slams|smashed|smashes|banged|bangs|threw|throws|pushed|pushes|shoved|kicked|hit|hits|punched|burned|burns|burnt|cut|cuts|twisted|grabbed|choked|strangled|dragged) (?:me|my (?:head|face|body|arm|arms|neck|hair|hand|back))\b",
    ),
    cue(
        Abuse,
        "hurt by someone",
        Strong,
        r"\b(?:forc(?:es|ed|ing)|pressur(?:es|ed|ing)|makes|made) me (?:to )?(?:have sex|into sex|do sexual|sleep with|do things i dont want)\b|\b(?:raped|rapes|assaulted|molested) (?:me|my)\b",
    ),
    cue(
        Abuse,
        "threatened with death",
        Strong,
        r"\b{abuser}\b(?: \w+){0,5} (?:said|says|threatened|threatens|told me|keeps saying|swore|screamed|yelled|texted)\b(?: \w+){0,5} (?:kill|hurt|beat|rape|murder|shoot|stab) (?:me|us|my kids|my children)\b",
    ),
    cue(
        Abuse,
        "hurt by someone",
        Strong,
        r"\b(?:i (?:was|got|have been|ve been|keep getting|get)|im being|been) (?:\w+ )?(?:raped|sexually assaulted|assaulted|molested|groped|abused|beaten up|beaten|strangled|choked|attacked|stalked|trafficked|hit by (?:my|him|her))\b|\b(?:raped|sexually assaulted|molested|groped|sexually abused|abused|strangled|choked) me\b|\btouch(?:es|ed|ing) me (?:inappropriately|when|at night|down there|without|where|in (?:my|the) (?:bed|room|shower|bathroom))\b|\b{abuser}\b(?: \w+){0,2} (?:comes|came|sneaks|sneaked|gets) into my (?:room|bed)\b(?: \w+){0,2} (?:at night|when|and im scared|and i am scared|scared)",
    ),
    cue(
        Abuse,
        "not safe at home",
        Strong,
        r"\b(?:not|dont feel|do not feel|never feel|dont|do not|no longer feel|never) (?:feel )?safe (?:at home|in my (?:own )?(?:home|house|room|bed)|at my (?:house|place)|with (?:him|her|them|my \w+)|around (?:him|her|them|my \w+)|going home|to go home|in this house|living here|living with (?:him|her|them|my \w+))\b|\b(?:scared|afraid|terrified|frightened) (?:to go|of going|to be) (?:back )?home\b|\b(?:scared|afraid|terrified|frightened) of (?:my (?:husband|wife|partner|boyfriend|girlfriend|bf|gf|dad|father|stepdad|stepfather|mom|mum|mother|stepmom|brother|ex|parents|uncle))\b",
    ),
    cue(
        Abuse,
        "controlled or trapped",
        Strong,
        r"\b{abuser}\b(?: \w+){0,2} (?:wont let me|doesnt let me|does not let me|never lets me|wont allow me to) (?:leave|go out|see my (?:friends|family)|have my phone|have money|eat|sleep|call anyone|talk to anyone)\b|\b{abuser}\b(?: \w+){0,2} (?:locks|locked|keeps) me (?:in|inside|in my room|in the house|locked up)\b|\b{abuser}\b(?: \w+){0,2} (?:is|s|has been|gets|can be|became|got) (?:\w+ )?(?:abusive|violent)\b|\b(?:im|i am|i live|living|stuck|trapped) (?:in|with) (?:an? )?(?:abusive|violent) (?:relationship|partner|husband|wife|boyfriend|girlfriend|home|household|family|marriage|dad|father|mom|mother|parents)\b",
    ),
    cue(
        Abuse,
        "violence at home mentioned",
        Weak,
        r"\bdomestic (?:violence|abuse)\b|\bintimate partner violence\b",
    ),
    // ----- harm to others
    cue(
        HarmToOthers,
        "intent to harm others",
        Strong,
        r"\b(?:i|im|ill|i will|im going to|im gonna|i want to|i wanna|i feel like|i might|i am going to|i could really|i really want to|i swear ill|gonna|going to|want to|planning to|plan to)\b(?: \w+){0,2} (?:kill|murder|stab|shoot|strangle|choke|poison|hurt|beat up|run over|slaughter|attack|burn down the house of) (?:him|her|them|my \w+|someone|somebody|everyone|everybody|people|that (?:guy|girl|man|woman|kid|teacher|boss)|the (?:kids|people|teacher|boss|baby|neighbou?rs?|guy|girl|class|whole class|family)|all of them|the whole \w+|my whole \w+|his \w+|her \w+)\b",
    ),
    cue(
        HarmToOthers,
        "intent to harm others",
        Firm,
        r"\b(?:shake|shaking|smother|smothering|drown|drowning|suffocate|suffocating|hit|hitting|hurt|hurting) (?:my|the|our) (?:baby|newborn|infant|toddler|son|daughter|kids|children|child)\b(?: \w+){0,3}(?: until| till| so hard| to make)?|\b(?:imagining|imagine|picturing|fantasi[sz]ing about|thinking about) (?:hurting|killing|stabbing|shooting|strangling|attacking) (?:people|someone|my \w+|the \w+|him|her|them|everyone)\b|\b(?:shoot up|bomb|blow up|attack|burn down) (?:the |my |our |a )?(?:school|class|classroom|office|workplace|work|church|mosque|synagogue|mall|university|college|campus|concert)\b|\bbring (?:a |my |the )?(?:gun|guns|knife|bomb|rifle|weapon) to (?:school|work|class|the office|church)\b|\b(?:make|want|will make|going to make|gonna make) (?:them|everyone|everybody|all of them|those people|him|her|my \w+|that \w+) (?:all )?pay\b(?: \w+){0,3} (?:blood|die|with their lives|gun|kill)?|\b(?:thoughts|fantasies|urges|fantasi[sz]e|fantasi[sz]ing|dream|dreaming|think|thinking) (?:of|about|to) (?:killing|hurting|harming|stabbing|shooting|strangling|murdering) (?:people|someone|somebody|others|my \w+|him|her|them|the baby|my baby|strangers|kids|children)\b|\b(?:urge|urges|want|wanting) to (?:kill|hurt|harm|stab|shoot|strangle|murder) (?:people|someone|somebody|others|strangers|the baby|my baby)\b|\b(?:scared|afraid|terrified|worried) (?:that )?(?:i|ill|i will|i might|im going to) (?:\w+ ){0,2}(?:hurt|kill|harm|stab|shake|smother|drown) (?:someone|somebody|people|my (?:\w+)|him|her|them|the baby|my baby|a child|the kids)\b",
    ),
    // From the fifth set's misses (each written to cover its family of phrasings).
    cue(
        SelfHarm,
        "farewell notes",
        Strong,
        r"\b(?:notes?|letters?|messages?|videos?) (?:for|to) (?:\w+ ){0,4}(?:in case (?:something|anything) (?:bad )?(?:happens|happened) to me|for (?:when|after) im (?:gone|dead|not here|not around))\b",
    ),
    cue(
        SelfHarm,
        "death the only way out",
        Strong,
        r"\bno (?:other )?(?:way|escape|exit) (?:out )?(?:except|but|other than|besides|apart from|than) (?:death|dying|to die|suicide|ending it|ending my life)\b|\b(?:death|dying|suicide|ending it|ending my life) (?:is|seems|feels like|looks like) (?:the|my) (?:only|last|one) (?:way out|option|answer|escape|solution|choice|exit)\b|\bonly (?:way out|escape|solution|option) (?:is|would be|left is) (?:death|dying|to die|suicide|ending it|ending my life)\b",
    ),
    cue(
        HarmToOthers,
        "urge to hurt someone",
        Strong,
        r"\bi\b(?: \w+){0,2} (?:feel like|felt like|fantasi[sz]e about|fantasi[sz]ing about|dream about|dreaming about|keep thinking about|cant stop thinking about|think about|thinking about|imagine|imagining) (?:killing|murdering|stabbing|shooting|strangling|choking|poisoning|hurting|beating up|attacking|smashing) (?:him|her|them|my \w+|someone|somebody|people|everyone|everybody|that \w+|the \w+|this \w+)\b",
    ),
    cue(
        Abuse,
        "touched by an adult",
        Strong,
        r"\b(?:my|our|the) (?:uncle|stepdad|step dad|stepfather|step father|dad|father|teacher|coach|older brother|brother|stepbrother|step brother|cousin|grandpa|grandfather|neighbou?r|babysitter|priest|pastor|tutor|moms boyfriend|mums boyfriend|mothers boyfriend)\b(?: \w+){0,3} (?:touches|touched|keeps touching|has been touching|was touching|fondles|fondled|gropes|groped|makes me touch|made me touch|comes into my bed|gets into my bed|came into my bed) (?:me|him|my)\b",
    ),
    // From the sixth set's misses.
    cue(
        Imminent,
        "exhaust fumes now",
        Strong,
        r"\b(?:car|engine|motor)\b(?: \w+){0,2} (?:is |s )?(?:running|on)\b(?: \w+){0,6} (?:closed|shut|locked) (?:garage|door|doors)\b|\b(?:closed|shut|locked) garage\b(?: \w+){0,6} (?:car|engine|motor) (?:is |s )?(?:running|on)\b|\bgarage\b(?: \w+){0,4} (?:car|engine) (?:is |s )?running\b(?: \w+){0,4} (?:sitting|sat|inside|in it)\b",
    ),
    cue(
        SelfHarm,
        "self-harm wounds",
        Strong,
        r"\b(?:cuts|scars|burns|wounds|marks) (?:that )?i (?:made|gave myself|did|caused|put there)\b|\bmy (?:arms?|wrists?|thighs?|legs?|stomach|skin|hips?) (?:are|is) (?:all )?(?:covered in|full of|covered with) (?:fresh )?(?:cuts|scars|burns|slashes)\b",
    ),
    cue(
        SelfHarm,
        "farewell",
        Strong,
        r"\b(?:dont|do not|dont really) think (?:i ?ll|i will|im going to|i am going to|im gonna) be (?:around|here|alive) (?:much|for much|for very|that much|a lot) longer\b|\bdoubt (?:i ?ll|i will) (?:be around|be here|be alive|make it) (?:much longer|another|till|until|to)\b",
    ),
    cue(
        SelfHarm,
        "a young person's will",
        Strong,
        r"\b(?:writing|wrote|drafting|drafted|making|made|finished|finishing) (?:my|a) (?:last )?will\b(?: \w+){0,4} (?:even though|although|though|and|but|at|when) (?:im|i am|i m)? ?(?:only )?(?:1\d|2[0-5]|young|a teenager|a teen|in high school|a student)\b",
    ),
    cue(
        SelfHarm,
        "telling oneself to die",
        Strong,
        r"\b(?:kys|kms|kill yourself|die)\b(?: \w+){0,4} (?:i tell myself|i say to myself|is what i tell myself|is what i say to myself|my brain tells me|my head tells me|the voice in my head)\b|\b(?:tell|telling|say|saying) (?:to )?myself (?:to )?(?:kys|kill myself|go die|die)\b",
    ),
    cue(
        SelfHarm,
        "ready to go",
        Strong,
        r"\bnothing (?:matters|matters anymore|is worth it|is worth it anymore)\b(?: \w+){0,4} (?:im|i am|i m) ready to (?:go|leave|die|be done|let go)\b|\b(?:im|i am|i m) ready to (?:die|leave this world|go for good|be gone|let go of life|leave this life)\b",
    ),
    cue(
        Abuse,
        "injuries from someone",
        Strong,
        r"\b(?:bruises|bruised|marks|a black eye|black eyes|welts|scars|cuts|burns|a split lip)\b(?: \w+){0,3} (?:from|because of|left by|given by|thanks to) {abuser}\b",
    ),
];

/// Every cue, English first.
pub fn cues() -> impl Iterator<Item = &'static Cue> {
    CUES.iter().chain(super::languages::CUES)
}

/// Figures of speech, accidents and negations: removed before strong and weak cues are
/// read (firm cues are read before this). "this exam is killing me", "I could never kill
/// myself", "I cut myself shaving", "my mom will kill me when she sees my grades".
/// A helper's words about themselves ("i dont know what to do", "im so worried about
/// her"), which do not make a message about someone else one about the person.
pub const HELPER_WORDS: &str = r"\b(?:and )?(?:i (?:dont|do not|really dont) know (?:what to do|how to help|what to say|how to help (?:him|her|them))|what (?:should|can|do) i (?:do|say)|how (?:can|do|should) i help(?: (?:him|her|them))?|im (?:so |really |very )?(?:worried|scared|afraid|terrified|concerned|panicking)(?: (?:about|for) (?:him|her|them))?|i need (?:advice|help)|please help(?: me)?)\b";

pub const NOT_RISK: &[&str] = &[
    // an injury of one's own from an everyday activity ("i hurt my back lifting boxes")
    r"\b(?:hurt|injured|sprained|twisted|pulled|strained|broke|bruised|banged|bumped|stubbed|tweaked) my (?:back|neck|knees?|ankles?|wrists?|shoulders?|hands?|foot|feet|toes?|fingers?|legs?|arms?|head|elbows?|hips?|muscles?|hamstring|calf)\b(?: \w+){0,3} (?:lifting|playing|at the gym|running|working out|falling|when i fell|at work|moving|training|skiing|cycling|dancing|in a game|at practice|doing)\b",
    // a joking threat with a trivial condition ("i'll kill my brother if he eats my fries again")
    r"\b(?:kill|murder|strangle|end) (?:him|her|them|you|my \w+)\b(?: \w+){0,2} if (?:he|she|they|you) (?:\w+ ){0,5}(?:again|one more time|ever again)\b(?: lol| lmao| haha\w*| jk)?",
    // figures of speech
    r"\b(?:is|are|s|was|were|re|keeps|keep|been|its|theyre|youre|thats|this|that|these|it) (?:literally |actually |honestly |really |slowly |just |absolutely )?killing (?:me|us|my \w+)\b",
    r"\bkill(?:ing|ed|s)? (?:it|time|the vibe|the lights|the light|the mood|the engine|the music|two birds|a bottle|the game|the bugs|the spider|a spider|the weeds|the pain|germs|bacteria|zombies|monsters|enemies|the boss|bosses|the process|the app|the tab)\b",
    r"\bkiller (?:workout|headache|deal|app|view|party|outfit|song|instinct)\b",
    r"\bdying (?:to|for|of laughter|laughing|from laughter|of embarrassment|of boredom|of curiosity|of thirst|of hunger|inside lol)\b|\bto die for\b",
    r"\b(?:die|died|dying|dead) (?:of|from) (?:embarrassment|shame|cringe|laughter|laughing|boredom|curiosity|the heat|thirst|hunger|old age|cancer|covid|a heart attack|natural causes)\b",
    r"\b(?:could|would|almost|nearly|literally|just|basically|i|we) (?:have |just |literally )?died (?:of|from|laughing|when|lol|lmao|haha|inside|a little)\b",
    r"\b(?:my|the|this|that|our) (?:phone|battery|laptop|car|plant|plants|fish|goldfish|hamster|computer|tv|printer|game|character|server|charger|headphones|ipad|tablet|console) (?:\w+ )?(?:died|is dying|is dead|will die|wants to die|is about to die|is going to die|keeps dying)\b",
    r"\bdead (?:tired|serious|on my feet|end|ends|line|lines|last|quiet|set)\b|\bdeadline\b|\bdeadlines\b",
    r"\bshoot (?:me |us |him |her )?(?:a|an) (?:text|message|email|dm|line|photo|pic)\b|\bshoot {self} in the foot\b|\bshooting (?:a|the) (?:film|movie|video|scene|photos?|hoops)\b",
    r"\b(?:cut|cutting|cuts) (?:the|a|my|his|her|our|your|some|back|down|out) (?:cake|hair|losses|class|classes|ties|corners|bread|grass|lawn|paper|onions?|vegetables|veggies|carbs|sugar|spending|costs|hours|budget|loose|it out|back on|down on|fingernails|nails|bangs)\b|\bcutting (?:back|down|out|ties|corners|class|classes|carbs|sugar|costs)\b",
    r"\b(?:fell and |slipped and )?(?:cut|cutting|burned|burnt|burn|hurt|hurting|injured|scratched|bruised|stabbed|hit|bit) (?:{self}|{themself}) (?:shaving|cooking|chopping|slicing|on the|on a|on my|with the (?:iron|stove|oven|pan|kettle|knife while)|while|by accident|accidentally|at the gym|at work|at practice|playing|lifting|skiing|running|skating|climbing|falling|when i fell|during|in the kitchen|in a fall|in training|at training|training|working out|at football|at soccer)\b",
    r"\b(?:accidentally|by accident|almost|nearly) (?:cut|burned|burnt|hurt|stabbed|injured) (?:{self}|{themself})\b|\b(?:fell|slipped|tripped) and (?:hurt|cut|injured|bruised) (?:{self}|{themself})\b|\b(?:hurt|injured|cut) (?:{self}|{themself}) (?:jumping|falling|skiing|cooking|playing|running)\b",
    r"\boverdos(?:e|ed|ing) on (?:coffee|caffeine|sugar|candy|chocolate|netflix|anime|tv|social media|memes|work|homework|cookies|pizza|carbs|sleep|tiktok|youtube|games|gaming|vitamins)\b",
    r"\b(?:mom|mum|mother|dad|father|parents|teacher|coach|boss|sister|brother|grandma|grandpa|roommate|friend|friends|manager|professor|everyone|people|teachers|mum and dad|mom and dad)\b(?: \w+){0,2} (?:is |are |s |will |would |re |d |ll |is going to |are going to |is gonna |are gonna |gonna |going to )?(?:literally |actually |totally |absolutely |so )?(?:kill|murder) me (?:when|if|for|because|cause|lol|lmao|haha)\b",
    r"\b(?:i|ill|im|im going to|im gonna|i will|i could|i swear ill|i wanna|i want to|gonna|going to) (?:\w+ )?(?:kill|murder|strangle) (?:him|her|them|my \w+|you|this \w+|that \w+)(?: \w+){0,2} (?:for|because|cause|lol|lmao|haha|jk)\b",
    r"\b(?:i|ill|i could|i could just) (?:kill|murder) (?:for|you) (?:a|an|some)\b|\bkill (?:for|you) (?:a|an|some) (?:pizza|burger|coffee|nap|beer|drink|snack)\b",
    r"\b(?:beat|beats|beating|beaten) (?:me|us) (?:at|in|to it|to the|by)\b|\bhit (?:me|us) (?:up|back|with (?:a|the) (?:question|bill|news|deadline|email|message|text))\b|\bhits (?:me|us) (?:up|hard|different|differently)\b|\b(?:hit|hits|hitting) me (?:that|how|when i realized|right in the feels|in the feels)\b|\bpush(?:es|ed|ing)? (?:me|us) (?:to|into|towards|hard|forward)\b",
    r"\bhang (?:out|in there|on|up|around|tight)\b|\bhanging (?:out|in there|up|around|on)\b",
    r"\bjump(?:ed|ing)? (?:in|into) (?:the |a |my )?(?:lake|pool|water|river|sea|ocean|shower|car|bed|conversation|discussion|project|career|new|puddle|waves)\b|\bjump(?:ed|ing)? (?:for|on|at|the gun|ship|through|rope|start|to conclusions|up and down|around)\b",
    r"\b(?:suicide|suicidal) (?:squad|doors|run|mission|missions|drill|drills|sprints?|lane|king|burn|bridge club)\b|\bsuicide (?:is|was) (?:painless|the theme|the title)\b",
    r"\b(?:killed|slayed|slew|crushed) (?:it|that|the exam|the test|my presentation|the interview)\b",
    r"\bgoodbye (?:letter|note|message|card|party|gift|email|speech|post) (?:for|to) (?:my|our|the) (?:team|colleague|colleagues|coworker|coworkers|class|teacher|boss|friend|neighbor|neighbour|company|students|job)\b",
    r"\bburden of (?:proof|the past|responsibility)\b|\btax burden\b|\bfinancial burden\b|\bburden (?:on the|on our) (?:system|economy|budget)\b",
    r"\b(?:edge|end|side) of (?:my|the|his|her|our) (?:bed|seat|chair|couch|sofa|desk|pool|table|bath|tub|stage)\b",
    r"\bplay(?:ing|ed)? dead\b|\bdrop dead gorgeous\b|\bover my dead body\b|\bbeating a dead horse\b",
    r"\bmy (?:feet|legs|back|head|eyes|stomach|knees|hands|arms|ears|shoulders|neck|teeth) (?:are |is |s )?killing me\b",
    r"\b(?:gun|firearms?|hunting|shotgun|rifle) (?:license|licence|permit|safety|course|collection|club|range|lessons?)\b|\b(?:rope|ropes|gun|guns|rifle|knife|knives|razor|blade)s? for (?:rock climbing|climbing|hunting|camping|sailing|fishing|the boat|sport|sport shooting|target practice|the range|my dog|crafts|the garden|work|cooking|shaving|a project|school|class|the farm|the tent|moving)\b|\bsport shooting\b",
    r"\bmiss me at (?:the|my|this|a|our) \w+|\b(?:if|when) i (?:left|leave|skip|skipped|skipped out on) (?:the |a |this )?(?:party|meeting|class|work|early|dinner)\b",
    r"\brather (?:die|be dead) than\b",
    r"\b(?:dont|do not|never) (?:want|wanna) to live (?:in|with|at|near|there|here in|in this|with (?:my|him|her|them))\b",
    r"\b(?:rope swing|jump rope|skipping rope|tow rope|climbing rope|rope course|ropes course)\b",
    r"\bso (?:\w+ ){1,2}(?:i|that i) could (?:just )?die\b|\b(?:i could|could) (?:just )?die (?:of|from|laughing|lol|haha)\b|\bdie laughing\b",
    r"\bnever (?:\w+ ){1,4}(?:kill|hurt|harm|cut) {self}\b",
    r"\b(?:tired|sick|fed up) (?:of|with) (?:living|life) (?:in|with|at|near|here|so far|paycheck|in this)\b",
    r"\blast (?:message|post|text|day|night|week) (?:before|until|for (?:a|the|now)|of the (?:year|week|month|season|term|semester|holidays)|at (?:work|school|the office|uni|college)|here before)\b",
    r"\bby the time (?:you|anyone|someone) (?:read|reads|see|sees|get|gets) this (?:ill|i will|im|i am|well|we will) (?:be )?(?:on|in|at|home|asleep|landed|back|there|away|boarding)\b",
    r"\bburn(?:ing|ed|t)? (?:{self}|{themself}) out\b|\bkilling {self} (?:studying|working|at work|at the gym|trying to|with (?:work|homework|training|revision)|to (?:finish|meet|get))\b",
    r"\bmakes me want to die (?:lol|lmao|haha|omg)\b",
    r"\b(?:asked|asks|ask) (?:me )?(?:if|whether) i (?:\w+ ){0,6}(?:and )?i (?:said|told (?:her|him|them)) no\b",
    r"\b(?:song|track|album|book|film|movie|show|poem|episode|band|game) (?:called|named|titled) (?:\w+ ){1,4}",
    r"\bbut now\b|\bnow (?:im|i am|i feel|things are|its|life is) (?:in a )?(?:much |so |a lot |way )?(?:better|good|ok|okay|fine|happy|stable|safe|doing well)\b",
    r"\bdie (?:my|her|his|their|your|the) hair\b|\bdie (?:it|them) (?:\w+ )?(?:pink|blue|red|black|purple|green|blonde|brown)\b",
    r"\bend(?:ing|ed)? (?:it|things) (?:with|between) (?:him|her|them|my \w+|us|me and)\b|\bend(?:ing)? (?:it|things) with (?:him|her)\b",
    // negations: said outright that they are not at risk
    r"\b(?:im|i am|i m|im really|im definitely|but im|i feel) not (?:suicidal|going to (?:kill|hurt|harm) {self}|gonna (?:kill|hurt|harm) {self}|thinking (?:about|of) (?:suicide|killing {self}|hurting {self}|ending (?:it|my life))|planning (?:to|on) (?:kill|hurt|harm|killing|hurting) {self}|in danger|at risk|going to do anything (?:stupid|to {self}))\b",
    r"\b(?:i )?(?:would|will|could)? ?never (?:ever )?(?:kill|hurt|harm|cut) {self}\b|\bnever (?:attempt|commit|try) suicide\b|\b(?:wouldnt|wont|would not|will not|could never|couldnt) (?:ever )?(?:kill|hurt|harm) {self}\b",
    r"\b(?:i )?(?:dont|do not) (?:want|wanna) to (?:die|kill {self}|hurt {self}|harm {self}|be dead)\b",
    r"\bno (?:thoughts|intention|intentions|plans?|desire|urge|urges) (?:of|to|about) (?:suicide|killing {self}|hurting {self}|harming {self}|die|dying|self harm|ending (?:my life|it))\b|\bnot (?:having|had) (?:any )?(?:suicidal )?thoughts (?:of|about) (?:suicide|hurting {self}|killing {self}|self harm)\b",
    r"\bnot suicidal\b",
];

/// Removed before even the firm cues: games and jokes ("he said he will kill me in
/// Fortnite lol").
pub const NOT_RISK_EVEN_FIRM: &[&str] = &[
    r"\b(?:kill|hurt|beat) (?:me|us) (?:in|at) (?:\w+ )?(?:fortnite|minecraft|roblox|the game|a game|game|cod|warzone|valorant|league|chess|mario kart|smash|fifa|tennis|pool|cards|monopoly|uno)\b|\b(?:kill|murder) me (?:lol|lmao|haha|jk|xd|lmfao)\b",
];

/// Framings that make a *weak* cue (a bare mention) safe: study, media, prevention work,
/// a death told as news or grief, moving house (for giving things away), travel (for "I
/// won't be here tomorrow"), an ordinary activity (for "I'm on the roof").
pub const SAFE_FRAMES: &[&str] = &[
    r"\b(?:team|match|practice|fixing|repair\w*|cleaning|painting|watching|enjoying|having a|having some|picnic|party|bbq|barbecue|sunbathing|taking (?:photos|pictures)|stargazing|club|tournament|working on|installing|gutter|gutters|solar panels|antenna|fireworks|sunset|sunrise|the view|concert|festival|smoking|drinking coffee|with friends|with my friends|roof garden|rooftop bar)\b",
    r"\b(?:visiting|holiday|holidays|vacation|trip|travelling|traveling|flight|plane|airport|out of town|business|conference|camp|camping|festival|the weekend|staying at|staying with|sleepover|hospital for (?:my|a) (?:surgery|operation|appointment))\b",
    r"\b(?:warning signs|signs of|how (?:can|do) i help|how to help|support someone|my students|leading cause|cause of death|read that|survived|survivor|survivors|documentary|documentaries|class|classes|course|lecture|professor|teacher said|essay|paper|thesis|dissertation|research|researching|studying|study on|study about|a study|article|articles|news|headline|headlines|reported|reporter|journalist|statistics|stats|rates|podcast|movie|film|book|novel|show|series|episode|season|character|characters|protagonist|villain|song|lyrics|album|poem|poetry|the play|hamlet|romeo|juliet|shakespeare|anime|manga|video game|fiction|writing a story|a story about|screenplay|history|historical|prevention|awareness|training|workshop|volunteer|volunteering|psychology|sociology|homework|assignment|presentation|debate|policy|campaign|charity|fundraiser|memorial|museum|exhibit|hotline number|helpline number|seminar|webinar|textbook|curriculum|public health|epidemiology|literature|tv|netflix|youtube video|quiz|exam question|case study|trigger warning|tw|cw|content warning)\b",
    r"\b(?:died by|committed|commited|lost (?:\w+ ){0,3}to) (?:suicide|sucide|suicde)\b|\b(?:killed|hanged|shot) (?:him|her|them)sel(?:f|ves)\b|\btook (?:his|her|their) (?:own )?life\b|\b(?:his|her|their) suicide\b|\bsuicide (?:loss|survivors?|bereavement)\b",
    r"\b(?:moving|move|moved|relocating|relocate|emigrating|downsizing|decluttering|declutter|minimalis\w*|garage sale|yard sale|car boot|donating|donate|charity shop|thrift|spring cleaning|clearing out|new apartment|new house|new flat)\b",
];

/// Framings of fiction and media that make even a strong cue about *someone else* safe
/// ("we read a novel about a girl who self-harms").
pub const FICTION_FRAMES: &[&str] = &[
    r"\b(?:novel|book|movie|film|series|episode|character|characters|documentary|article|podcast|play|story|poem|song|anime|manga|tv show|the show|fiction|protagonist)\b",
];

/// A recovery told as past ("I used to cut, I've been clean for two years"): self-harm
/// cues in it are history, not risk, unless the message also speaks of now
/// ([`PRESENT_RISK`]).
pub const RECOVERY: &[&str] = &[
    r"\b(?:stopped|stop|quit|quitting|stopping|stop me from) (?:self ?harming|cutting|hurting {self}|harming {self})\b",
    r"\b(?:used to|years ago|year ago|months ago|when i was (?:younger|a teen|a teenager|a kid|a child|in (?:high )?school|in college|at uni|\d+)|in the past|back then|back in (?:high school|college|\d+)|a long time ago|as a teen|as a teenager|as a kid|a few years back|in my teens|in my twenties|in my early \w+|last decade)\b",
];

/// Signs of recovery that, with a [`RECOVERY`] time frame, make self-harm cues history.
pub const RECOVERED: &[&str] = &[
    r"\b(?:clean|recovered|recovery|better now|doing (?:\w+ )?better|got help|getting help|no longer|not anymore|dont anymore|havent (?:\w+ ){0,3}since|glad (?:i|im|that i)|grateful|survived|survivor|proud|happy now|in a good place|(?:years?|months?|weeks?|days) (?:clean|free|sober|without)|therapy helped|therapy|its behind me|past that|over that|made it through|got through|came through|still here|now i|today i|these days im|i now|now im|healed|healing|helped me|saved my life|stable now|much happier|feel good now|doing well)\b",
];

/// Words that make a recovery story about now again.
pub const PRESENT_RISK: &[&str] = &[
    r"\b(?:again|lately|recently|these days i (?:want|think|feel like)|tonight|right now|this week|today i want|still (?:want|think|feel like|have urges|cut|cutting)|starting to|urges? (?:are )?back|relaps\w*|back to|thinking about it again|cant stop thinking|want to again|might do it|going to do it)\b",
];
