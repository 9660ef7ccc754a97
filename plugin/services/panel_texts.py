"""The words of the panel invitation, reminder and answer pages, one table per language, so a
translator edits text and never code, and every language says the same things in the same order
(a test holds each table to the English keys and placeholders).

Written to be polite without knowing the reader: formal "you" where a language has one (Sie, Вы,
您), and in Hebrew and Arabic forms that read the same for a man or a woman (no imperatives).
Placeholders: ``{name}``, ``{panel}``, ``{deadline}``; nothing else is filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "greeting": "Hello,",
        "greeting.name": "Hello {name},",
        "invitation.subject": "Invitation: {panel}",
        "invitation.intro": "We would like to invite you to “{panel}”, a small group conversation in which "
        "our team hears from community members about their experience.",
        "invitation.answer_by": "Please reply by {deadline}.",
        "reminder.subject": "Reminder: {panel}",
        "reminder.intro": "A quick reminder of our invitation to “{panel}”, a small group conversation in "
        "which our team hears from community members about their experience.",
        "reminder.answer_by": "If you would like to take part, please reply by {deadline}.",
        "accept": "To take part:",
        "decline": "To decline:",
        "free_to_decline": "You are free to decline; nothing else will happen.",
        "thanks": "Thank you!",
        "confirm_accept.title": "Take part in this panel?",
        "confirm_accept.text": "Please confirm that you would like to take part.",
        "confirm_accept.button": "Yes, I will take part",
        "confirm_decline.title": "Decline this invitation?",
        "confirm_decline.text": "Please confirm that you do not want to take part. Nothing else will happen.",
        "confirm_decline.button": "Decline the invitation",
        "accepted.title": "Thank you!",
        "accepted.text": "You have accepted the invitation. The research team will be in touch with the "
        "details.",
        "declined.title": "Invitation declined",
        "declined.text": "You have declined the invitation, and nothing else will happen. Thank you for "
        "letting us know.",
        "expired.title": "This link has expired",
        "expired.text": "This link is too old to be used, so nothing has been changed. If you still wish to "
        "take part, please contact the team that invited you.",
        "invalid.title": "This link is not valid",
        "invalid.text": "This link is not valid, so nothing has been changed. Please check that you opened "
        "the complete link from your email.",
    },
    "de": {
        "greeting": "Guten Tag,",
        "greeting.name": "Hallo {name},",
        "invitation.subject": "Einladung: {panel}",
        "invitation.intro": "wir möchten Sie herzlich zur Gesprächsrunde „{panel}“ einladen: In kleiner "
        "Runde spricht unser Team mit Mitgliedern der Community über ihre Erfahrungen.",
        "invitation.answer_by": "Bitte antworten Sie bis {deadline}.",
        "reminder.subject": "Erinnerung: {panel}",
        "reminder.intro": "wir möchten Sie an unsere Einladung zur Gesprächsrunde „{panel}“ erinnern: In "
        "kleiner Runde spricht unser Team mit Mitgliedern der Community über ihre Erfahrungen.",
        "reminder.answer_by": "Wenn Sie teilnehmen möchten, antworten Sie bitte bis {deadline}.",
        "accept": "Zusagen:",
        "decline": "Absagen:",
        "free_to_decline": "Eine Absage ist völlig in Ordnung – es passiert dann nichts weiter.",
        "thanks": "Vielen Dank!",
        "confirm_accept.title": "An der Gesprächsrunde teilnehmen?",
        "confirm_accept.text": "Bitte bestätigen Sie, dass Sie teilnehmen möchten.",
        "confirm_accept.button": "Ja, ich nehme teil",
        "confirm_decline.title": "Einladung absagen?",
        "confirm_decline.text": "Bitte bestätigen Sie, dass Sie nicht teilnehmen möchten. Es passiert dann "
        "nichts weiter.",
        "confirm_decline.button": "Einladung absagen",
        "accepted.title": "Vielen Dank!",
        "accepted.text": "Sie haben die Einladung angenommen. Das Forschungsteam meldet sich mit den "
        "Einzelheiten bei Ihnen.",
        "declined.title": "Einladung abgesagt",
        "declined.text": "Sie haben die Einladung abgesagt; es passiert nichts weiter. Danke, dass Sie uns "
        "Bescheid gegeben haben.",
        "expired.title": "Dieser Link ist abgelaufen",
        "expired.text": "Dieser Link ist zu alt und kann nicht mehr verwendet werden; es wurde nichts "
        "geändert. Wenn Sie trotzdem teilnehmen möchten, wenden Sie sich bitte an das Team, das Sie "
        "eingeladen hat.",
        "invalid.title": "Dieser Link ist ungültig",
        "invalid.text": "Dieser Link ist nicht gültig; es wurde nichts geändert. Bitte prüfen Sie, ob Sie "
        "den vollständigen Link aus Ihrer E-Mail geöffnet haben.",
    },
    "he": {
        "greeting": "שלום,",
        "greeting.name": "שלום {name},",
        "invitation.subject": "הזמנה: {panel}",
        "invitation.intro": 'נשמח להזמין אותך להשתתף בפאנל המחקר "{panel}": מפגש בקבוצה קטנה שבו הצוות '
        "שלנו שומע מחברי הקהילה על הניסיון שלהם.",
        "invitation.answer_by": "נודה לתשובה עד {deadline}.",
        "reminder.subject": "תזכורת: {panel}",
        "reminder.intro": 'רצינו להזכיר את ההזמנה שלנו להשתתף בפאנל המחקר "{panel}": מפגש בקבוצה קטנה '
        "שבו הצוות שלנו שומע מחברי הקהילה על הניסיון שלהם.",
        "reminder.answer_by": "אם ברצונך להשתתף, נודה לתשובה עד {deadline}.",
        "accept": "לאישור השתתפות:",
        "decline": "לסירוב להזמנה:",
        "free_to_decline": "אפשר בהחלט לסרב, ושום דבר נוסף לא יקרה.",
        "thanks": "תודה רבה!",
        "confirm_accept.title": "להשתתף בפאנל?",
        "confirm_accept.text": "נא לאשר שברצונך להשתתף.",
        "confirm_accept.button": "כן, אשתתף",
        "confirm_decline.title": "לסרב להזמנה?",
        "confirm_decline.text": "נא לאשר שאין ברצונך להשתתף. שום דבר נוסף לא יקרה.",
        "confirm_decline.button": "סירוב להזמנה",
        "accepted.title": "תודה רבה!",
        "accepted.text": "אישרת את ההשתתפות. צוות המחקר ייצור איתך קשר עם כל הפרטים.",
        "declined.title": "ההזמנה נדחתה",
        "declined.text": "סירבת להזמנה, ושום דבר נוסף לא יקרה. תודה שעדכנת אותנו.",
        "expired.title": "תוקף הקישור פג",
        "expired.text": "הקישור הזה ישן מדי ואי אפשר להשתמש בו, ולכן לא שונה דבר. אם עדיין ברצונך "
        "להשתתף, אפשר לפנות לצוות ששלח את ההזמנה.",
        "invalid.title": "הקישור אינו תקין",
        "invalid.text": "הקישור הזה אינו תקין, ולכן לא שונה דבר. כדאי לוודא שנפתח הקישור המלא מהמייל.",
    },
    "ar": {
        "greeting": "مرحبًا،",
        "greeting.name": "مرحبًا {name}،",
        "invitation.subject": "دعوة: {panel}",
        "invitation.intro": "يسعدنا أن ندعوك للمشاركة في «{panel}»، وهي مجموعة نقاش صغيرة يستمع فيها فريقنا "
        "إلى أعضاء المجتمع ليتعلّم من تجاربهم.",
        "invitation.answer_by": "نرجو الرد في موعد أقصاه {deadline}.",
        "reminder.subject": "تذكير: {panel}",
        "reminder.intro": "نودّ تذكيرك بدعوتنا للمشاركة في «{panel}»، وهي مجموعة نقاش صغيرة يستمع فيها فريقنا "
        "إلى أعضاء المجتمع ليتعلّم من تجاربهم.",
        "reminder.answer_by": "إن رغبت في المشاركة، نرجو الرد في موعد أقصاه {deadline}.",
        "accept": "لقبول الدعوة:",
        "decline": "للاعتذار عن الدعوة:",
        "free_to_decline": "يمكنك الاعتذار بكل حرية، ولن يترتب على ذلك أي شيء آخر.",
        "thanks": "شكرًا لك!",
        "confirm_accept.title": "تأكيد المشاركة",
        "confirm_accept.text": "نرجو تأكيد رغبتك في المشاركة.",
        "confirm_accept.button": "نعم، سأشارك",
        "confirm_decline.title": "الاعتذار عن الدعوة",
        "confirm_decline.text": "نرجو تأكيد عدم رغبتك في المشاركة. لن يترتب على ذلك أي شيء آخر.",
        "confirm_decline.button": "الاعتذار عن الدعوة",
        "accepted.title": "شكرًا لك!",
        "accepted.text": "تم قبول الدعوة. سيتواصل معك فريق البحث لإبلاغك بالتفاصيل.",
        "declined.title": "تم الاعتذار عن الدعوة",
        "declined.text": "تم تسجيل اعتذارك عن الدعوة، ولن يترتب على ذلك أي شيء آخر. شكرًا لإعلامنا.",
        "expired.title": "انتهت صلاحية هذا الرابط",
        "expired.text": "هذا الرابط قديم ولم يعد صالحًا للاستخدام، لذلك لم يتغير شيء. إن رغبت في المشاركة، "
        "يُرجى التواصل مع الفريق الذي أرسل إليك الدعوة.",
        "invalid.title": "هذا الرابط غير صالح",
        "invalid.text": "هذا الرابط غير صالح، لذلك لم يتغير شيء. يُرجى التأكد من فتح الرابط كاملًا من رسالة "
        "البريد الإلكتروني.",
    },
    "zh": {
        "greeting": "您好：",
        "greeting.name": "{name}，您好：",
        "invitation.subject": "邀请：{panel}",
        "invitation.intro": "诚邀您参加“{panel}”。这是一个小型座谈小组，我们的团队将倾听"
        "社区成员分享他们的使用体验。",
        "invitation.answer_by": "请于 {deadline} 前回复。",
        "reminder.subject": "提醒：{panel}",
        "reminder.intro": "温馨提醒：我们曾邀请您参加“{panel}”。这是一个小型座谈小组，"
        "我们的团队将倾听社区成员分享他们的使用体验。",
        "reminder.answer_by": "如您希望参加，请于 {deadline} 前回复。",
        "accept": "接受邀请：",
        "decline": "婉拒邀请：",
        "free_to_decline": "您完全可以婉拒，不会有任何其他影响。",
        "thanks": "谢谢！",
        "confirm_accept.title": "参加本次座谈？",
        "confirm_accept.text": "请确认您希望参加。",
        "confirm_accept.button": "是的，我将参加",
        "confirm_decline.title": "婉拒邀请？",
        "confirm_decline.text": "请确认您不希望参加。不会有任何其他影响。",
        "confirm_decline.button": "婉拒邀请",
        "accepted.title": "谢谢！",
        "accepted.text": "您已接受邀请。研究团队将与您联系并告知具体安排。",
        "declined.title": "已婉拒邀请",
        "declined.text": "您已婉拒邀请，不会有任何其他影响。感谢您告知我们。",
        "expired.title": "此链接已过期",
        "expired.text": "此链接已过期，无法再使用，因此没有做任何更改。"
        "如您仍希望参加，请联系向您发出邀请的团队。",
        "invalid.title": "此链接无效",
        "invalid.text": "此链接无效，因此没有做任何更改。请确认您打开的是邮件中的完整链接。",
    },
    "ru": {
        "greeting": "Здравствуйте!",
        "greeting.name": "Здравствуйте, {name}!",
        "invitation.subject": "Приглашение: {panel}",
        "invitation.intro": "Приглашаем Вас принять участие в исследовательской группе «{panel}»: это "
        "небольшая встреча, на которой наша команда беседует с участниками сообщества об их опыте.",
        "invitation.answer_by": "Пожалуйста, ответьте до {deadline}.",
        "reminder.subject": "Напоминание: {panel}",
        "reminder.intro": "Напоминаем о нашем приглашении в исследовательскую группу «{panel}»: это "
        "небольшая встреча, на которой наша команда беседует с участниками сообщества об их опыте.",
        "reminder.answer_by": "Если Вы хотите участвовать, пожалуйста, ответьте до {deadline}.",
        "accept": "Принять приглашение:",
        "decline": "Отказаться:",
        "free_to_decline": "Вы можете отказаться — больше ничего не произойдёт.",
        "thanks": "Спасибо!",
        "confirm_accept.title": "Участвовать во встрече?",
        "confirm_accept.text": "Пожалуйста, подтвердите, что Вы хотите участвовать.",
        "confirm_accept.button": "Да, я буду участвовать",
        "confirm_decline.title": "Отказаться от приглашения?",
        "confirm_decline.text": "Пожалуйста, подтвердите, что Вы не хотите участвовать. Больше ничего не "
        "произойдёт.",
        "confirm_decline.button": "Отказаться от приглашения",
        "accepted.title": "Спасибо!",
        "accepted.text": "Вы приняли приглашение. Исследовательская команда свяжется с Вами и сообщит "
        "подробности.",
        "declined.title": "Вы отказались от приглашения",
        "declined.text": "Ваш отказ принят, больше ничего не произойдёт. Спасибо, что сообщили нам.",
        "expired.title": "Срок действия ссылки истёк",
        "expired.text": "Эта ссылка устарела и больше не действует, поэтому ничего не изменилось. Если Вы "
        "всё же хотите участвовать, пожалуйста, свяжитесь с командой, которая Вас пригласила.",
        "invalid.title": "Ссылка недействительна",
        "invalid.text": "Эта ссылка недействительна, поэтому ничего не изменилось. Пожалуйста, проверьте, "
        "что Вы открыли ссылку из письма полностью.",
    },
}
