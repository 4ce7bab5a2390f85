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

use super::Category;

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
        r"(?:he|she|they|my (?:mums?|moms?|mothers?|dads?|fathers?) (?:boyfriend|girlfriend|partner|husband|wife)|my (?:older |younger |big |little |foster |adoptive |)(?:husband|wife|partner|boyfriend|girlfriend|bf|gf|dad|father|stepdad|step dad|stepfather|mom|mum|mother|stepmom|step mom|stepmother|brother|sister|uncle|aunt|ex|ex husband|ex wife|ex boyfriend|ex girlfriend|fiance|fiancee|parents?|grandfather|grandpa|cousin|roommate|flatmate|boss|landlord|son|daughter|step brother|stepbrother|family|in laws|mother in law|father in law))",
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
mod english;

/// Every cue, English first.
pub fn cues() -> impl Iterator<Item = &'static Cue> {
    english::CUES.iter().chain(super::languages::CUES)
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
    // a small everyday injury ("i cut my finger chopping onions", "hit my head on the cupboard")
    r"\b(?:cut|sliced|burned|burnt|nicked|pricked|jammed|smashed|slammed|shut) my (?:finger|fingers|thumb|fingertip|toe|toes|pinky)\b",
    r"\b(?:hit|bumped|banged|smacked|whacked|stubbed) my (?:head|knee|elbow|toe|shin|hip|forehead|funny bone) (?:on|against) (?:the|a|my) (?:cupboard|cabinet|door|doorframe|door frame|table|desk|shelf|ceiling|car|counter|bed|corner|chair|fridge|sink|bunk|window|stairs|railing|dresser)\b",
    // going to sleep ("gonna crash early tonight")
    r"\bcrash(?:ing)? (?:early|out|on (?:the|my|a) (?:couch|sofa|bed|floor)|at (?:my|a|his|her|their) \w+|for the night|hard|soon)\b(?: tonight| today| now)?",
    // everyday mishaps and sadness that are not risk
    r"\b(?:knocked|dropped|spilled|spilt) (?:over )?(?:the|my|his|her|some|all the) {pills}\b|\bpick(?:ed)? them (?:all )?up\b",
    r"\b(?:fell|slipped|tripped|brakes|crashed|crash|accident|bumped|ducked)\b(?: \w+){0,6} (?:hit|banged|bumped|hurt|smacked) my (?:head|knee|elbow|face|nose|shin)\b",
    r"\b(?:i )?cried {self} to sleep(?: (?:last night|again|every night|tonight|most nights))?\b",
    r"\b(?:kill|murder|strangle) (?:him|her|them|my \w+)\b(?: \w+){0,6} (?:jk|just kidding|j k)\b",
    // a question answered no ("my therapist asked if i ever had thoughts of suicide and i said no")
    r"\b(?:asked|asks|asking) (?:me )?(?:if|whether) (?:i|ive|id|im)\b(?: \w+){0,6} (?:{suicide}|thoughts of (?:{suicide}|killing myself|self harm|hurting myself)|self harm\w*)\b(?: \w+){0,2} (?:and )?i (?:said|told (?:him|her|them)|answered) no\b",
    // ending a thing that is not a life ("i want to end my subscription", "end my relationship")
    r"\bend (?:my|the|our|this|that|his|her) (?:subscription|membership|contract|lease|relationship|marriage|engagement|friendship|streak|shift|call|meeting|account|plan|trial|internship|job|tenancy|phone plan|gym membership)\b",
    // violence long past and made peace with ("my dad used to hit me ... he apologized")
    r"\bused to (?:hit|beat|hurt|slap|spank|yell at) me\b(?: \w+){0,12} (?:apologi[sz]ed|talked (?:it )?through|made peace|forgave|forgiven|good now|in therapy together|good relationship|changed)\b",
    // kitchen knives and notes about chores
    r"\bknife (?:skills|skill|sharpening|set|block|class|course|techniques?)\b",
    r"\b(?:note|letter|email|message) (?:\w+ ){0,4}(?:about|regarding|re|asking (?:about|for|if|to)) (?:the |my |our |his |her )?(?:dishes|rent|noise|parking|laundry|cleaning|bills?|homework|schedule|meeting|party|package|trash|garbage|deadline|project|leave|vacation|time off|fridge|wifi)\b",
    // broken sleep ("i sometimes wake up in the middle of the night")
    r"\b(?:i |i sometimes |i often |i keep |i always )?(?:wake|woke|waking|wakes) up (?:in the middle of the night|at night|at \d+(?: ?am)?|early|too early|tired|exhausted|several times|a lot|sweating|with a headache)\b",
    // play, titles and going home ("hit me with a pillow", "ready to go home", a game's
    // "last night on earth", "sleep forever after this exam week")
    r"\b{hit} me with (?:a |her |his |their |the )?(?:pillow|pillows|snowball|snowballs|water balloon|nerf \w+|foam \w+|ball|pool noodle)\b",
    r"\bready to go (?:home|out|back home|shopping|to work|to school)\b",
    r"\blast night on earth\b(?: \w+){0,3} (?:before the apocalypse|in the game|game|movie|film|song|episode)\b",
    r"\bsleep (?:forever|for a (?:week|month|year)|for days) (?:after|once|when) (?:this|the|my|finals|exams|it|all)\b",
    // figures of speech
    r"\b(?:is|are|s|was|were|re|keeps|keep|been|its|theyre|youre|thats|this|that|these|it) (?:literally |actually |honestly |really |slowly |just |absolutely )?killing (?:me|us|my \w+)\b",
    r"\bkill(?:ing|ed|s)? (?:it|time|the vibe|the lights|the light|the mood|the engine|the music|two birds|a bottle|the game|the bugs|the spider|a spider|the weeds|the pain|germs|bacteria|zombies|monsters|enemies|the boss|bosses|the process|the app|the tab)\b",
    r"\bkiller (?:workout|headache|deal|app|view|party|outfit|song|instinct)\b",
    r"\bdying (?:to|for|of laughter|laughing|from laughter|of embarrassment|of boredom|of curiosity|of thirst|of hunger|inside lol)\b|\b(?:is|was|are|were|looks?|tastes?|its|thats|s|(?:a|an) \w+) to die for\b",
    r"\b(?:die|died|dying|dead) (?:of|from) (?:embarrassment|shame|cringe|laughter|laughing|boredom|curiosity|the heat|thirst|hunger|old age|cancer|covid|a heart attack|natural causes)\b",
    r"\b(?:could|would|almost|nearly|literally|just|basically|i|we) (?:have |just |literally )?died (?:of|from|laughing|when|lol|lmao|haha|inside|a little)\b",
    r"\b(?:my|the|this|that|our) (?:phone|battery|laptop|car|plant|plants|fish|goldfish|hamster|computer|tv|printer|game|character|server|charger|headphones|ipad|tablet|console) (?:\w+ )?(?:died|is dying|is dead|will die|wants to die|is about to die|is going to die|keeps dying)\b",
    r"\bdead (?:tired|serious|on my feet|end|ends|line|lines|last|quiet|set)\b|\bdeadline\b|\bdeadlines\b",
    r"\bshoot (?:me |us |him |her )?(?:a|an) (?:text|message|email|dm|line|photo|pic)\b|\bshoot {self} in the foot\b|\bshooting (?:a|the) (?:film|movie|video|scene|photos?|hoops)\b",
    r"\b(?:cut|cutting|cuts) (?:the|a|my|his|her|our|your|some|back|down|out) (?:cake|hair|losses|class|classes|ties|corners|bread|grass|lawn|paper|onions?|vegetables|veggies|carbs|sugar|spending|costs|hours|budget|loose|it out|back on|down on|fingernails|nails|bangs)\b|\bcutting (?:back|down|out|ties|corners|class|classes|carbs|sugar|costs)\b",
    r"\b(?:fell and |slipped and )?(?:cut|cutting|burned|burnt|burn|hurt|hurting|injured|scratched|bruised|stabbed|hit|bit) (?:{self}|{themself}) (?:shaving|cooking|chopping|slicing|on the|on a|on my|with the (?:iron|stove|oven|pan|kettle|knife while)|while|by accident|accidentally|at the gym|at work|at practice|playing|lifting|skiing|running|skating|climbing|falling|when i fell|during|in the kitchen|in a fall|in training|at training|training|working out|at football|at soccer)\b",
    r"\b(?:accidentally|by accident|almost|nearly) (?:cut|burned|burnt|hurt|stabbed|injured) (?:{self}|{themself})\b|\b(?:fell|slipped|tripped) and (?:hurt|cut|injured|bruised) (?:{self}|{themself})\b|\b(?:hurt|injured|cut) (?:{self}|{themself}) (?:jumping|falling|skiing|cooking|playing|running)\b",
    r"\boverdos(?:e|ed|ing) on (?:coffee|caffeine|sugar|candy|chocolate|netflix|anime|tv|social media|memes|work|homework|cookies|pizza|carbs|sleep|tiktok|youtube|games|video games|gaming|vitamins|snacks|sweets)\b",
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
    r"\b(?:gun|firearms?|hunting|shotgun|rifle) (?:license|licence|permit|safety|course|collection|club|range|lessons?)\b|\b(?:rope|ropes|gun|guns|rifle|knife|knives|razor|blade)s? for (?:my |a |the |our |his |her )?(?:next |new |first )?(?:rock climbing|climbing|hunting|camping|sailing|fishing|the boat|sport|sport shooting|target practice|the range|my dog|crafts|the garden|work|cooking|shaving|a project|school|class|the farm|the tent|moving)\b|\bsport shooting\b",
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
    r"\b(?:this|the|that|these|those) (?:heat|weather|humidity|traffic|song|songs|class|lecture|homework|meeting|meetings|commute|queue|line|cringe|episode|game|wifi|noise|hangover|cold|rain|music|show|movie|video|group project|zoom call)\b(?: \w+){0,2} (?:makes|is making|make|are making) me (?:want to|wanna) die\b",
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
    r"\bold (?:self ?harm |sh |cutting )?scars\b",
];

/// Signs of recovery that, with a [`RECOVERY`] time frame, make self-harm cues history.
pub const RECOVERED: &[&str] = &[
    r"\b(?:clean|recovered|recovery|better now|doing (?:\w+ )?better|got help|getting help|no longer|not anymore|dont anymore|havent (?:\w+ ){0,3}since|glad (?:i|im|that i)|grateful|survived|survivor|proud|happy now|in a good place|(?:years?|months?|weeks?|days) (?:clean|free|sober|without)|therapy helped|therapy|its behind me|past that|over that|made it through|got through|came through|still here|now i|today i|these days im|i now|now im|healed|healing|helped me|saved my life|stable now|much happier|feel good now|doing well)\b",
    r"\bhow far (?:i|ive|i have|weve|we have) come\b",
];

/// Words that make a recovery story about now again.
pub const PRESENT_RISK: &[&str] = &[
    r"\b(?:again|lately|recently|these days i (?:want|think|feel like)|tonight|right now|this week|today i want|still (?:want|think|feel like|have urges|cut|cutting)|starting to|urges? (?:are )?back|relaps\w*|back to|thinking about it again|cant stop thinking|want to again|might do it|going to do it)\b",
];
