"""A small labelled corpus: 20 documents in mixed formats and 10 questions with their answer file."""

from pathlib import Path

DOCUMENTS = {
    "refunds.md": "# Refund policy\n\nCustomers can return any product within 30 days of delivery "
    "for a full refund. The money goes back to the original payment card within five business "
    "days after the warehouse receives the parcel.",
    "shipping.txt": "Standard shipping takes three to five working days inside the country. "
    "Express delivery arrives the next day when ordered before 2 pm. International parcels "
    "travel by air freight and usually need ten days.",
    "passwords.html": "<html><head><title>Account help</title><style>p{}</style></head><body>"
    "<h1>Resetting your password</h1><p>Click 'Forgot password' on the sign-in page and we "
    "email you a link. The link expires after one hour.</p></body></html>",
    "warranty.txt": "Every laptop comes with a two-year manufacturer warranty covering hardware "
    "faults. Accidental damage such as a cracked screen or spilled coffee is not covered.",
    "battery.md": "## Battery care\n\nKeep the battery between 20 and 80 percent charge to extend "
    "its lifespan. Avoid leaving the device in a hot car; heat degrades lithium cells.",
    "office_hours.json": '{"office": {"city": "Lisbon", "opening_hours": "Monday to Friday, 9:00 '
    'to 17:30", "note": "The support office is closed on public holidays."}}',
    "pricing.csv": "plan,monthly price,users\nStarter,9 euros,1 user\nTeam,29 euros,up to 10 "
    "users\nEnterprise,custom quote,unlimited users\n",
    "privacy.txt": "We store customer data in data centres located in Frankfurt. Personal data is "
    "never sold to advertisers, and you can request deletion of your account data at any time.",
    "api_limits.md": "The public API accepts 100 requests per minute per key. Clients exceeding "
    "the rate limit receive HTTP status 429 and should retry after the indicated delay.",
    "onboarding.txt": "New employees receive a laptop, a badge and a mentor on their first day. "
    "The onboarding programme lasts two weeks and ends with a short presentation.",
    "coffee.html": "<html><body><p>The espresso machine on the third floor is descaled every "
    "Friday. Please rinse the milk frother after each use.</p></body></html>",
    "gardening.txt": "Tomatoes need at least six hours of direct sunlight and deep watering twice "
    "a week. Pinch off side shoots so the plant puts its energy into fruit.",
    "bread.md": "Sourdough bread rises with a starter of wild yeast and lactic bacteria instead "
    "of commercial yeast. The dough ferments slowly for twelve to eighteen hours.",
    "cycling.txt": "Check tyre pressure before every ride; road bikes run at six to eight bar. "
    "Lubricate the chain every few hundred kilometres or after riding in rain.",
    "volcanoes.txt": "Mount Etna in Sicily is one of the most active volcanoes in the world. Its "
    "eruptions produce lava flows and ash clouds that sometimes close Catania airport.",
    "chess.json": '[{"topic": "castling", "rule": "The king moves two squares towards a rook and '
    'the rook jumps over it; neither piece may have moved before."}]',
    "tea.txt": "Green tea should steep in water at about 80 degrees for two minutes; boiling "
    "water makes it bitter. Black tea tolerates boiling water and longer steeping.",
    "parking.csv": "zone,rule\nVisitor car park,free for the first two hours\nStaff garage,"
    "requires a badge at the barrier\n",
    "security.md": "Two-factor authentication protects accounts with a code from an "
    "authenticator app in addition to the password. Enable it under Settings, Security.",
    "backups.txt": "Servers are backed up every night at 2 am. Backups are kept for 35 days and "
    "a restore test is performed every quarter.",
}

QUESTIONS = {
    "How long do I have to send an item back and get my money returned?": "refunds.md",
    "I forgot my login secret, how can I get a new one?": "passwords.html",
    "Does the guarantee pay for a screen I broke by dropping it?": "warranty.txt",
    "How much does the plan for a small group of people cost per month?": "pricing.csv",
    "What happens when my program calls the API too often?": "api_limits.md",
    "When is the support desk open?": "office_hours.json",
    "How many days does an order abroad take to arrive?": "shipping.txt",
    "How hot should the water be for green tea?": "tea.txt",
    "Where are my personal records kept and can I have them erased?": "privacy.txt",
    "How often are the servers backed up and for how long are copies retained?": "backups.txt",
}


def write_corpus(folder: Path) -> Path:
    """Write the 20 documents into `folder` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
