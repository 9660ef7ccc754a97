"""Short texts of the demo community, per language: cheap to pick, plausible to read.

``question`` and ``idea`` are topic titles, ``post`` a show-and-tell title, ``chat`` a reply or chat
message, ``good`` and ``bad`` review texts.
"""

from __future__ import annotations

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "question": (
            "How do I configure SSO with Okta?",
            "Webhook retries keep failing with 401",
            "Best way to import historical data?",
            "Rate limits on the bulk export API?",
        ),
        "idea": (
            "Support for custom fields in exports",
            "Dark mode for the dashboard",
            "Slack alerts for failed syncs",
        ),
        "post": ("Our Nimbus dashboard in Grafana", "Migrating 2M contacts: lessons learned"),
        "chat": (
            "Thanks, that fixed it!",
            "Same problem here after upgrading to 3.2.",
            "Has anyone tried this with Kubernetes?",
            "Great talk yesterday, are the slides online?",
        ),
        "good": ("Easy to set up and the support team is fantastic.", "Our team saves hours every week."),
        "bad": ("Powerful, but the pricing is hard to justify for a small team.",),
    },
    "de": {
        "question": (
            "Wie richte ich SSO mit Okta ein?",
            "Webhook-Wiederholungen schlagen mit 401 fehl",
            "Wie importiere ich historische Daten am besten?",
            "Gibt es Limits für den Bulk-Export?",
        ),
        "idea": (
            "Eigene Felder im Export",
            "Dunkelmodus für das Dashboard",
            "Benachrichtigung bei fehlgeschlagener Synchronisierung",
        ),
        "post": ("Unser Nimbus-Dashboard in Grafana", "Migration von 2 Mio. Kontakten – unsere Erfahrungen"),
        "chat": (
            "Danke, das hat geholfen!",
            "Gleiches Problem nach dem Update auf 3.2.",
            "Hat das schon jemand mit Kubernetes getestet?",
            "Toller Vortrag gestern – gibt es die Folien?",
        ),
        "good": (
            "Schnell eingerichtet und der Support ist großartig.",
            "Spart unserem Team jede Woche Stunden.",
        ),
        "bad": ("Mächtig, aber für ein kleines Team zu teuer.",),
    },
    "fr": {
        "question": (
            "Comment configurer le SSO avec Okta ?",
            "Les webhooks échouent avec une erreur 401",
            "Comment importer l'historique ?",
            "Quelles limites pour l'export en masse ?",
        ),
        "idea": (
            "Champs personnalisés dans les exports",
            "Mode sombre pour le tableau de bord",
            "Alertes Slack en cas d'échec de synchronisation",
        ),
        "post": (
            "Notre tableau de bord Nimbus dans Grafana",
            "Migrer 2 millions de contacts : retour d'expérience",
        ),
        "chat": (
            "Merci, ça marche !",
            "Même problème après la mise à jour 3.2.",
            "Quelqu'un a testé avec Kubernetes ?",
            "Super présentation hier, où trouver les slides ?",
        ),
        "good": (
            "Facile à mettre en place, support très réactif.",
            "Notre équipe gagne des heures chaque semaine.",
        ),
        "bad": ("Puissant, mais trop cher pour une petite équipe.",),
    },
    "pt": {
        "question": (
            "Como configuro SSO com o Okta?",
            "Webhooks falhando com erro 401",
            "Qual a melhor forma de importar dados históricos?",
            "Existe limite na exportação em massa?",
        ),
        "idea": (
            "Campos personalizados na exportação",
            "Modo escuro no painel",
            "Alertas no Slack quando a sincronização falha",
        ),
        "post": ("Nosso painel do Nimbus no Grafana", "Migrando 2 milhões de contatos: lições aprendidas"),
        "chat": (
            "Valeu, resolveu!",
            "Mesmo problema depois de atualizar para a 3.2.",
            "Alguém já testou com Kubernetes?",
            "Ótima palestra ontem, onde estão os slides?",
        ),
        "good": ("Fácil de configurar e o suporte é excelente.", "Nossa equipe economiza horas toda semana."),
        "bad": ("Poderoso, mas caro demais para uma equipe pequena.",),
    },
    "he": {
        "question": (
            "איך מגדירים SSO עם Okta?",
            "ה-webhooks נכשלים עם שגיאה 401",
            "מה הדרך הכי טובה לייבא נתונים היסטוריים?",
            "יש מגבלות על ייצוא בכמויות גדולות?",
        ),
        "idea": ("שדות מותאמים אישית בייצוא", "מצב כהה ללוח הבקרה", "התראות ב-Slack כשסנכרון נכשל"),
        "post": ("לוח הבקרה שלנו ב-Grafana", "העברנו 2 מיליון אנשי קשר: מה למדנו"),
        "chat": (
            "תודה, זה פתר את הבעיה!",
            "אותה בעיה אצלי אחרי השדרוג ל-3.2.",
            "מישהו ניסה את זה עם Kubernetes?",
            "הרצאה מעולה אתמול, יש מצגת?",
        ),
        "good": ("קל להתקנה והתמיכה מצוינת.", "הצוות שלנו חוסך שעות בכל שבוע."),
        "bad": ("חזק, אבל יקר מדי לצוות קטן.",),
    },
    "ar": {
        "question": (
            "كيف أقوم بإعداد SSO مع Okta؟",
            "فشل إعادة محاولة الـ webhooks مع الخطأ 401",
            "ما أفضل طريقة لاستيراد البيانات القديمة؟",
            "هل هناك حدود للتصدير الجماعي؟",
        ),
        "idea": ("حقول مخصصة في التصدير", "الوضع الداكن للوحة التحكم", "تنبيهات Slack عند فشل المزامنة"),
        "post": ("لوحة Nimbus الخاصة بنا في Grafana", "نقل مليوني جهة اتصال: ما تعلمناه"),
        "chat": (
            "شكراً، تم حل المشكلة!",
            "نفس المشكلة بعد التحديث إلى 3.2.",
            "هل جرب أحدكم هذا مع Kubernetes؟",
            "محاضرة رائعة أمس، هل الشرائح متاحة؟",
        ),
        "good": ("سهل الإعداد وفريق الدعم ممتاز.", "يوفر فريقنا ساعات كل أسبوع."),
        "bad": ("قوي، لكنه مكلف جداً لفريق صغير.",),
    },
    "zh": {
        "question": (
            "如何配置 Okta 单点登录？",
            "Webhook 重试一直返回 401",
            "导入历史数据的最佳方式是什么？",
            "批量导出接口有速率限制吗？",
        ),
        "idea": ("导出支持自定义字段", "仪表盘深色模式", "同步失败时发送 Slack 提醒"),
        "post": ("我们在 Grafana 里的 Nimbus 仪表盘", "迁移两百万联系人的经验总结"),
        "chat": (
            "谢谢，问题解决了！",
            "升级到 3.2 后我也遇到同样的问题。",
            "有人在 Kubernetes 上试过吗？",
            "昨天的分享很棒，有幻灯片吗？",
        ),
        "good": ("上手简单，技术支持非常给力。", "我们团队每周节省好几个小时。"),
        "bad": ("功能强大，但对小团队来说太贵了。",),
    },
    "ru": {
        "question": (
            "Как настроить SSO через Okta?",
            "Повторы вебхуков падают с ошибкой 401",
            "Как лучше импортировать исторические данные?",
            "Есть ли лимиты на массовый экспорт?",
        ),
        "idea": (
            "Пользовательские поля в экспорте",
            "Тёмная тема для дашборда",
            "Уведомления в Slack при сбое синхронизации",
        ),
        "post": ("Наш дашборд Nimbus в Grafana", "Миграция 2 млн контактов: выводы"),
        "chat": (
            "Спасибо, помогло!",
            "Та же проблема после обновления до 3.2.",
            "Кто-нибудь пробовал это в Kubernetes?",
            "Отличный доклад вчера, где слайды?",
        ),
        "good": ("Легко настроить, поддержка отвечает быстро.", "Экономит нашей команде часы каждую неделю."),
        "bad": ("Мощно, но слишком дорого для маленькой команды.",),
    },
    "ja": {
        "question": (
            "Okta で SSO を設定するには？",
            "Webhook の再試行が 401 で失敗します",
            "過去データをインポートする最良の方法は？",
            "一括エクスポートにレート制限はありますか？",
        ),
        "idea": (
            "エクスポートでカスタムフィールドに対応してほしい",
            "ダッシュボードのダークモード",
            "同期失敗時に Slack 通知",
        ),
        "post": ("Grafana で作った Nimbus ダッシュボード", "200万件の連絡先を移行して学んだこと"),
        "chat": (
            "ありがとうございます、解決しました！",
            "3.2 にアップデート後、同じ問題が出ています。",
            "Kubernetes で試した人はいますか？",
            "昨日の発表よかったです。スライドはありますか？",
        ),
        "good": ("導入が簡単で、サポートも素晴らしい。", "チームの作業時間を毎週何時間も削減できました。"),
        "bad": ("高機能だが、小規模チームには高すぎる。",),
    },
}

#: Forum category for posts in a language other than English.
CATEGORIES = {
    "de": "Deutsch",
    "fr": "Français",
    "pt": "Português",
    "he": "עברית",
    "ar": "العربية",
    "zh": "中文",
    "ru": "Русский",
    "ja": "日本語",
}

#: How often a member writes in their own language rather than in English.
NATIVE_SHARE = {"de": 0.35, "fr": 0.4, "pt": 0.5, "he": 0.15, "ar": 0.3, "zh": 0.6, "ru": 0.5, "ja": 0.55}

GITHUB_TITLES = (
    "Fix timezone handling in CSV export",
    "Add retry backoff to the webhook client",
    "Crash when member email is empty",
    "Docs: clarify API rate limits",
    "Support Python 3.13",
    "Pagination skips the last page",
    "Add type hints to the client",
    "Bump dependencies",
)
GITHUB_COMMENTS = (
    "Reproduced on 3.2.1, looking into it.",
    "LGTM, thanks!",
    "Could you add a test for this?",
    "Same here on macOS.",
    "Fixed in main, will be in the next release.",
)
