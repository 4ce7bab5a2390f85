//! Cues in the most spoken languages besides English (Mandarin, Hindi, Spanish, French,
//! Arabic, Bengali, Portuguese, Russian, Urdu, and also Indonesian, German, Japanese,
//! Korean, Turkish, Italian and Vietnamese): the words, not the grammar; enough that a
//! message in one of them is never silently missed although the model itself speaks only
//! English. Written, like [`super::lexicon`], against [`super::normalize`]'s output.

use super::lexicon::{cue, Cue, Force::*};
use super::Category::*;

pub const CUES: &[Cue] = &[
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"\b(?:suicidio|suicidarme|suicidarse|suicidar|me quiero morir|quiero morir(?:me)?|ganas de morir(?:me)?|me quiero (?:matar|quitar la vida)|quitarme la vida|quitar(?:me)? la vida|quiero matarme|voy a matarme|me voy a matar|matarme|quitarme la vida|no quiero (?:seguir )?vivir|(?:ya )?no quiero (?:seguir )?estar (?:aqu[ií]|en este mundo|vivo|viva)|acabar con (?:mi vida|todo)|hacerme da[nñ]o|cortarme las venas|cortarme|me corto|desaparecer para siempre|estar[ií]an mejor sin m[ií])\b",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"\b(?:suic[ií]dio|suicidar|quero morrer|me matar|vou me matar|tirar (?:a )?minha (?:pr[oó]pria )?vida|n[aã]o quero (?:mais )?viver|n[aã]o aguento mais (?:viver|a vida|estar viva|estar vivo)|acabar com (?:tudo|a minha vida|minha vida)|me cortar|me machucar|me suicidar)\b",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"\b(?:me suicider|suicidaire|me tuer|veux mourir|envie de mourir|d ?en finir|en finir|mettre fin [aà] (?:mes jours|ma vie)|me faire du mal|me scarifier|plus envie de vivre|marre de vivre)\b",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"\b(?:selbstmord|suizid\w*|mich umbringen|mich t[oö]ten|sterben will|will sterben|nicht mehr leben|nicht mehr (?:aufwachen|da sein|hier sein|existieren)|mir (?:etwas|was) antun|mich ritzen|ritze mich)\b",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"\b(?:suicidarmi|uccidermi|ammazzarmi|voglio morire|togliermi la vita|farla finita|non voglio pi[uù] vivere)\b",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"(?:суицид|самоубийств|незачем жить|нет смысла жить|не вижу смысла жить|покончить с собой|покончу с собой|убить себя|убью себя|хочу умереть|не хочу жить|не хочу больше жить|порезать себя|режу себя|резать вены|повеситься|повешусь|выпрыгнуть из окна|наглотаться таблеток|наглоталась|наглотался)",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"(?:انتحار|انتحر|أنتحر|الانتحار|اقتل نفسي|أقتل نفسي|أريد أن أموت|اريد ان اموت|بدي موت|نفسي أموت|أتمنى الموت|لا أريد أن أعيش|لا اريد ان اعيش|أؤذي نفسي|اؤذي نفسي)",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"(?:आत्महत्या|जीना नहीं|जीने की इच्छा नहीं|ज़िंदा नहीं रहना|जिंदा नहीं रहना|ख़ुदकुशी|खुदकुशी|मरना चाहता|मरना चाहती|मर जाना चाहता|मर जाना चाहती|जीना नहीं चाहता|जीना नहीं चाहती|खुद को मार|ख़ुद को मार|अपनी जान दे|जान दे दूंगा|जान दे दूंगी|जान दे दूँगा|जान दे दूँगी|खुद को खत्म|ख़ुद को ख़त्म)",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"\b(?:khudkushi|khud kushi|aatmhatya|atmahatya|aatmahatya|marna chahta|marna chahti|mar jana chahta|mar jana chahti|marna chahata|jeena nahi chahta|jeena nahi chahti|jina nahi chahta|jina nahi chahti|jaan de dunga|jaan de dungi|jaan dedunga|khud ko maar|khud ko khatam|zindagi khatam|mujhe marna hai)\b",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"(?:خودکشی|خود کشی|مرنا چاہتا|مرنا چاہتی|جینا نہیں چاہتا|جینا نہیں چاہتی|اپنی جان لے|اپنی جان دے)",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"(?:আত্মহত্যা|মরে যেতে চাই|মরতে চাই|নিজেকে মেরে ফেল|বাঁচতে চাই না|বাঁচতে ইচ্ছে করে না)",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"(?:自杀|自殺|想死|不想活|结束一切|結束一切|活着没有意义|活著沒有意義|活着没意思|活著沒意思|不如死了|死了算了|轻生|輕生|结束(?:我的|自己的)?生命|結束(?:我的|自己的)?生命|割腕|跳楼|跳樓|活不下去|了结自己|了結自己|死にたい|消えたい|リスカ|首を吊|自傷|자살|죽고 ?싶)",
    ),
    cue(
        SelfHarm,
        "suicide (other language)",
        Strong,
        r"\b(?:bunuh diri|ingin mati|pengen mati|mau mati|ingin bunuh diri|intihar|[oö]lmek istiyorum|kendimi [oö]ld[uü]r\w*|t[ựu] t[ửu]|mu[ốo]n ch[ếe]t)\b",
    ),
    cue(
        Imminent,
        "overdose taken (other language)",
        Strong,
        r"\b(?:tom[eé] (?:muchas|todas las|un mont[oó]n de|demasiadas) pastillas|tomei (?:muitos|todos os) (?:comprimidos|rem[eé]dios)|j ai pris (?:toutes mes|trop de|plein de) (?:pilules|m[eé]dicaments|cachets)|acabo de tomar (?:muchas|todas las) pastillas)\b",
    ),
    cue(
        Abuse,
        "violence (other language)",
        Strong,
        r"\b(?:me (?:pega|golpea|maltrata|viola)|me va a matar|me quiere matar|tengo miedo de (?:mi )?(?:esposo|marido|pareja|novio|padre|pap[aá]|madre)|ele me bate|ela me bate|me bate|vai me matar|me agride|(?:il|elle|mon (?:mari|copain|p[eè]re|beau p[eè]re|fr[eè]re|compagnon|ex)|ma (?:m[eè]re|femme|copine|compagne|belle m[eè]re)) me (?:frappe|bat|tape|viole)|va me tuer|(?:er|sie) schl[aä]gt mich|bringt mich um|mi picchia)\b",
    ),
    cue(
        Abuse,
        "violence (other language)",
        Strong,
        r"(?:(?:бьёт|бьет|избивает|ударил|избил|бил) меня|меня (?:бьёт|бьет|бьют|избивает|избил)|убьёт меня|убьет меня|يضربني|سيقتلني|يعنفني|मुझे मारता है|मुझे पीटता है|मुझे मार डालेगा|家暴|(?:他|她)(?:经常|每天|总是|又|一直)?打我|(?:他|她)会杀了我|殴られ)",
    ),
    cue(
        Abuse,
        "violence (other language)",
        Strong,
        r"\b(?:mujhe maarta hai|mujhe peet\w*|mujhe maar dalega)\b",
    ),
    cue(
        OtherAtRisk,
        "someone else is suicidal (other language)",
        Strong,
        r"\b(?:se quiere (?:matar|suicidar|morir)|se va a (?:matar|suicidar)|quer se matar|vai se matar|veut se suicider|va se suicider|veut mourir)\b",
    ),
    cue(
        SelfHarm,
        "does not want to live (other language)",
        Strong,
        r"\b(?:jeena|jina|jeene|jine) (?:nahi|nahin|nhi|nai) (?:hai|h|he|chahiye|chahta|chahti)\b|\b(?:nahi|nahin|nhi) (?:jeena|jina)\b|\b(?:mar|mar jaun|mar jaaun|mar jau) (?:jana|jaana|jaun|jaaun|jau) (?:hai|chahta|chahti)\b",
    ),
];
