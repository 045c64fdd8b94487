"""The synthetic headline table: 35 fine event classes → (coarse category, headline templates).

Data only; :mod:`taskdistill.data.synthetic` fills the ``{slots}``. All companies, people, drugs and
products are invented. Confusable pairs share vocabulary on purpose (guidance vs earnings, price
target vs analyst rating, announced vs completed vs terminated deals, fine vs lawsuit vs probe, IPO
vs secondary vs notes offering, buyback vs insider purchase); a headline that mentions two events is
labelled by its lead event (the one the headline is about, usually the first clause).
"""

from __future__ import annotations

# Slots: co/co2 company, tkp optional "(TICKER)", tk ticker, q quarter, yr/yr2 years, pct percent,
# amt money, amt_small insider-size money, eps/est per-share amounts (est < eps), p_lo/p_hi share prices,
# d_lo/d_hi dividends, g_lo/g_hi credit grades, firm broker, r_up/r_dn/r_keep analyst ratings,
# agency rating agency, person, role, jobs head count, shares share count, union, reg regulator,
# topic probe topic, drug, device, drugreg drug regulator, cond disease, product, customer, theme,
# region, month, when day, nth ordinal, n_cuts, ratio/rratio split ratios, up/down (plural) and
# ups/downs (singular) share-move verbs, dir up|down.
TABLE: dict[str, tuple[str, list[str]]] = {
    "Earnings Beat": ("Earnings", [
        "{co}{tkp} {q} profit tops estimates on strong demand",
        "{co} beats {q} earnings forecasts, keeps {yr} outlook unchanged",
        "{co} posts {q} EPS of {eps}, above the {est} consensus",
        "{co} quarterly results beat Wall Street expectations; shares {up} {pct}%",
        "{co} reports surprise {q} profit as revenue rises {pct}%",
        "{co} earnings top estimates but company reaffirms cautious {yr} guidance",
    ]),
    "Earnings Miss": ("Earnings", [
        "{co}{tkp} {q} profit misses estimates as costs climb",
        "{co} posts {q} EPS of {est}, below the {eps} consensus",
        "{co} falls short of {q} revenue forecasts; shares {down} {pct}%",
        "{co} quarterly earnings disappoint, company sticks to {yr} guidance",
        "{co} swings to unexpected {q} loss",
        "{co} misses on {q} earnings despite {pct}% sales growth",
    ]),
    "Guidance Raise": ("Guidance", [
        "{co}{tkp} raises {yr} revenue forecast",
        "{co} lifts full-year outlook after {q} earnings beat",
        "{co} boosts {yr} profit guidance to {eps} a share, above estimates",
        "{co} now expects {yr} sales to grow {pct}%, up from prior forecast",
        "{co} ups annual guidance on strong demand; shares {up} {pct}%",
        "{co} raises outlook despite missing {q} estimates",
    ]),
    "Guidance Cut": ("Guidance", [
        "{co}{tkp} cuts {yr} revenue forecast",
        "{co} lowers full-year outlook even as {q} earnings beat estimates",
        "{co} slashes {yr} profit guidance to {est} a share, below estimates",
        "{co} now expects {yr} sales to fall {pct}%, down from prior forecast",
        "{co} warns on annual profit as demand weakens; shares {down} {pct}%",
        "{co} trims {yr} outlook citing higher costs",
    ]),
    "Dividend Initiation": ("Dividends", [
        "{co}{tkp} initiates quarterly dividend of {d_lo} per share",
        "{co} declares first-ever cash dividend",
        "{co} to start paying a dividend of {d_lo} a share",
        "{co} reinstates dividend for the first time since {yr}",
        "{co} board approves inaugural quarterly dividend",
    ]),
    "Dividend Increase": ("Dividends", [
        "{co}{tkp} raises quarterly dividend by {pct}% to {d_hi} per share",
        "{co} boosts dividend to {d_hi} from {d_lo}",
        "{co} hikes payout for the {nth} consecutive year",
        "{co} increases quarterly cash dividend, reaffirms {yr} guidance",
        "{co} declares higher dividend of {d_hi} a share",
    ]),
    "Dividend Cut": ("Dividends", [
        "{co}{tkp} cuts quarterly dividend to {d_lo} from {d_hi}",
        "{co} suspends dividend to preserve cash",
        "{co} slashes payout by {pct}% as earnings slump",
        "{co} lowers dividend, shares {down} {pct}%",
        "{co} board reduces quarterly dividend to {d_lo} per share",
    ]),
    "Share Buyback": ("OTHER", [
        "{co}{tkp} announces {amt} share repurchase program",
        "{co} to buy back up to {amt} of its stock",
        "{co} board authorizes new {amt} buyback",
        "{co} expands share buyback plan by {amt}",
        "{co} launches accelerated share repurchase of {amt}",
    ]),
    "Insider Transaction": ("OTHER", [
        "{co}{tkp} {role} {person} buys {amt_small} of company shares",
        "{co} director sells {shares} shares, filing shows",
        "{person}, {role} of {co}, discloses purchase of {shares} shares",
        "{co} insider selling: {role} unloads {amt_small} of stock",
        "{co} {role} adds to stake, buying {shares} shares at {p_lo}",
    ]),
    "Merger Announced": ("Mergers and Acquisitions", [
        "{co}{tkp} to acquire {co2} for {amt}",
        "{co} agrees to buy {co2} in {amt} deal",
        "{co2} accepts {amt} takeover offer from {co}",
        "{co} and {co2} agree to merge in all-stock deal",
        "{co} to buy rival {co2}; {co2} shares {up} {pct}%",
        "{co} strikes deal to acquire {co2}, pending regulatory approval",
    ]),
    "Merger Completed": ("Mergers and Acquisitions", [
        "{co}{tkp} completes acquisition of {co2}",
        "{co} closes {amt} purchase of {co2}",
        "{co} wraps up {co2} deal after regulatory approval",
        "{co} finalizes merger with {co2}",
        "{co2} now part of {co} as {amt} takeover closes",
    ]),
    "Merger Terminated": ("Mergers and Acquisitions", [
        "{co}{tkp} calls off {amt} deal to buy {co2}",
        "{co} and {co2} scrap merger amid regulatory pushback",
        "{co} walks away from bid for {co2}",
        "{co2} terminates merger agreement with {co}, will receive {amt} break fee",
        "{co} abandons takeover of {co2} after regulators object",
    ]),
    "IPO": ("OTHER", [
        "{co} prices IPO at {p_lo} per share, raising {amt}",
        "{co} files for U.S. initial public offering",
        "{co} shares {up} {pct}% in Nasdaq debut",
        "{co} sets IPO terms, seeks valuation of up to {amt}",
        "{co} makes stock market debut after raising {amt} in IPO",
    ]),
    "Secondary Offering": ("OTHER", [
        "{co}{tkp} prices {amt} secondary offering at {p_lo} per share",
        "{co} launches public offering of {shares} common shares",
        "{co} shares {down} {pct}% after {amt} stock offering",
        "{co} raises {amt} in follow-on share sale",
        "{co} major holder sells {shares} shares in secondary offering",
    ]),
    "Debt Issuance": ("OTHER", [
        "{co}{tkp} prices {amt} senior notes offering",
        "{co} raises {amt} in bond sale",
        "{co} issues {amt} of convertible notes due {yr2}",
        "{co} taps debt market with {amt} offering of notes",
        "{co} launches {amt} term loan to refinance debt",
    ]),
    "Credit Upgrade": ("Credit Ratings", [
        "{agency} upgrades {co} to {g_hi} from {g_lo}",
        "{co}{tkp} credit rating raised by {agency}",
        "{agency} lifts {co} rating, outlook stable",
        "{co} upgraded to investment grade by {agency}",
        "{agency} raises {co} debt rating on stronger cash flow",
    ]),
    "Credit Downgrade": ("Credit Ratings", [
        "{agency} downgrades {co} to {g_lo} from {g_hi}",
        "{co}{tkp} credit rating cut by {agency}",
        "{agency} lowers {co} rating, outlook negative",
        "{co} cut to junk by {agency}",
        "{agency} slashes {co} debt rating on rising leverage",
    ]),
    "Analyst Upgrade": ("Analyst Rating", [
        "{firm} upgrades {co} to {r_up}",
        "{co}{tkp} upgraded to {r_up} at {firm}, price target raised to {p_hi}",
        "{firm} upgrades {co} to {r_up} from {r_dn}, sees upside",
        "{co} shares {up} {pct}% after {firm} upgrade",
        "{firm} turns bullish on {co}, lifts rating to {r_up}",
    ]),
    "Analyst Downgrade": ("Analyst Rating", [
        "{firm} downgrades {co} to {r_dn}",
        "{co}{tkp} downgraded to {r_dn} at {firm}, price target cut to {p_lo}",
        "{firm} cuts {co} to {r_dn} from {r_up} on valuation",
        "{co} shares {down} {pct}% after {firm} downgrade",
        "{firm} turns cautious on {co}, lowers rating to {r_dn}",
    ]),
    "Price Target Raise": ("Price Targets", [
        "{firm} raises {co} price target to {p_hi} from {p_lo}",
        "{co}{tkp} price target lifted to {p_hi} at {firm}; {r_keep} rating maintained",
        "{firm} boosts {co} target to {p_hi}, reiterates {r_keep}",
        "{firm} hikes price target on {co} after strong {q}",
        "{co}: {firm} raises target, keeps {r_keep} rating",
    ]),
    "Price Target Cut": ("Price Targets", [
        "{firm} cuts {co} price target to {p_lo} from {p_hi}",
        "{co}{tkp} price target lowered to {p_lo} at {firm}; {r_keep} rating maintained",
        "{firm} trims {co} target to {p_lo}, reiterates {r_keep}",
        "{firm} slashes price target on {co} after weak {q}",
        "{co}: {firm} lowers target, keeps {r_keep} rating",
    ]),
    "Executive Change": ("Labour Issues", [
        "{co}{tkp} names {person} as new {role}",
        "{co} {role} {person} to step down {when}",
        "{co} appoints {person} {role}, effective immediately",
        "{co} {role} resigns; shares {down} {pct}%",
        "{co} ousts {role} {person} amid board review",
    ]),
    "Layoffs": ("Labour Issues", [
        "{co}{tkp} to cut {jobs} jobs",
        "{co} lays off {pct}% of workforce in restructuring",
        "{co} announces {jobs} job cuts to reduce costs",
        "{co} to shed {jobs} positions as demand slows",
        "{co} plans layoffs, cuts {yr} cost outlook",
    ]),
    "Strike": ("Labour Issues", [
        "Workers at {co}{tkp} walk off the job over pay",
        "{union} strike halts production at {co} plants",
        "{co} workers vote to authorize strike",
        "{co} strike enters {nth} week as talks stall",
        "{union} members at {co} reject contract, extend walkout",
    ]),
    "Lawsuit": ("Regulatory", [
        "{co}{tkp} sued by {co2} over patent infringement",
        "Shareholders file class action against {co}",
        "Jury orders {co} to pay {amt} in patent case",
        "{co2} files lawsuit accusing {co} of breach of contract",
        "{co} settles shareholder lawsuit for {amt}",
    ]),
    "Regulatory Fine": ("Regulatory", [
        "{reg} fines {co}{tkp} {amt} over {topic}",
        "{co} to pay {amt} to settle {reg} charges",
        "{co} hit with {amt} penalty by {reg}",
        "{reg} orders {co} to pay {amt} for {topic}",
        "{co} agrees to {amt} {reg} settlement over {topic}",
    ]),
    "Regulatory Investigation": ("Regulatory", [
        "{reg} opens probe into {co}{tkp} over {topic}",
        "{co} discloses {reg} subpoena related to {topic}",
        "{co} under investigation by {reg}; shares {down} {pct}%",
        "{reg} launches inquiry into {co} {topic}",
        "{co} says {reg} is reviewing its {topic}",
    ]),
    "Product Launch": ("Products-Services", [
        "{co}{tkp} unveils {product}",
        "{co} launches new {product} {when}",
        "{co} rolls out {product} to customers in {region}",
        "{co} introduces {product}, shares {up} {pct}%",
        "{co} debuts {product} ahead of holiday season",
    ]),
    "Contract Win": ("Products-Services", [
        "{co}{tkp} wins {amt} contract from {customer}",
        "{co} awarded {amt} {customer} deal",
        "{co} lands multi-year supply agreement with {customer}",
        "{customer} picks {co} for {amt} project",
        "{co} secures {amt} order from {customer}",
    ]),
    "Partnership": ("Products-Services", [
        "{co}{tkp} partners with {co2} on {theme}",
        "{co} and {co2} sign agreement to jointly develop {theme}",
        "{co} teams up with {co2} to expand {theme}",
        "{co} forms strategic alliance with {co2}",
        "{co2} and {co} announce {theme} collaboration",
    ]),
    "Product Approval": ("Product Approval", [
        "{drugreg} approves {co}'s {drug} for {cond}",
        "{co}{tkp} wins {drugreg} approval for {drug}",
        "{co} receives {drugreg} clearance for {device}",
        "{co} gets green light from {drugreg} for {cond} treatment",
        "{co} shares {up} {pct}% after {drugreg} approves {drug}",
    ]),
    "Stock Price Move": ("Stock price movement", [
        "{co}{tkp} shares {up} {pct}% in heavy trading",
        "{co} stock {downs} {pct}% to 52-week low",
        "{co} shares {up} {pct}% on takeover speculation",
        "Why {co} stock is {dir} {pct}% today",
        "{co} shares {down} {pct}% ahead of {q} results",
        "{co} stock hits record high, up {pct}% this year",
    ]),
    "Stock Split": ("OTHER", [
        "{co}{tkp} announces {ratio} stock split",
        "{co} board approves {ratio} forward split; shares {up} {pct}%",
        "{co} to split its stock {ratio}",
        "{co} announces {rratio} reverse stock split",
        "{co} stock split takes effect {when}",
    ]),
    "Bankruptcy": ("OTHER", [
        "{co}{tkp} files for Chapter 11 bankruptcy protection",
        "{co} seeks court protection from creditors",
        "{co} files for bankruptcy after failing to refinance {amt} of debt",
        "{co} enters bankruptcy with plan to sell assets to {co2}",
        "{co} shares {down} {pct}% after bankruptcy filing",
    ]),
    "Macro News": ("OTHER", [
        "Fed holds rates steady, signals {n_cuts} cuts in {yr}",
        "U.S. inflation rises {pct}% in {month}, above forecasts",
        "Oil {ups} {pct}% as OPEC+ extends output cuts",
        "Treasury yields {up} as jobs report beats estimates",
        "ECB cuts rates by a quarter point as growth slows",
        "Stocks {down} as {region} economic data disappoints",
    ]),
}

COMPANY_STEMS = [
    "Northwind", "Apexion", "Silverline", "Bluewater", "Crestview", "Harborstone", "Ironbridge", "Lumora",
    "Quantrix", "Redfield", "Solstice", "Tidewell", "Veridian", "Westmark", "Zephyra", "Altamont",
    "Brightpath", "Cobaltis", "Driftwood", "Evergrove", "Falconer", "Granitex", "Helixor", "Kestrel",
    "Larkspur", "Meridion", "Novacrest", "Oakhurst", "Pinnacle", "Ravenwood", "Stellaris", "Trivane",
    "Umbriel", "Valtura", "Windmere", "Yarrowfield", "Corvane", "Elmstead", "Fenwick", "Orbisa",
]
COMPANY_SUFFIXES = ["Corp", "Holdings", "Inc", "Group", "Technologies", "Pharmaceuticals", "Energy",
                    "Bancorp", "Systems", "Foods", "Motors", "Networks", "Therapeutics", "Retail", "Airlines"]
PHARMA_SUFFIXES = ["Pharmaceuticals", "Therapeutics", "Biosciences", "Medical", "Bio"]  # drug / device headlines
FIRMS = ["Goldman Sachs", "Morgan Stanley", "JPMorgan", "Barclays", "Jefferies", "UBS", "Piper Sandler",
         "Raymond James", "Wedbush", "BofA Securities", "Citi", "Evercore ISI", "Bernstein", "Mizuho", "KeyBanc"]
AGENCIES = ["Moody's", "S&P Global Ratings", "Fitch Ratings", "S&P", "Fitch"]
GRADES = ["B", "B+", "BB-", "BB", "BB+", "BBB-", "BBB", "BBB+", "A-", "A", "A+", "AA-"]
RATINGS_UP = ["buy", "overweight", "outperform", "strong buy"]
RATINGS_DOWN = ["neutral", "hold", "underweight", "sell", "underperform", "equal weight"]
RATINGS_KEEP = ["buy", "overweight", "outperform", "neutral", "hold", "market perform"]
FIRST_NAMES = ["Maria", "James", "Aisha", "Chen", "Olivia", "Rahul", "Sofia", "Daniel", "Yuki", "Thomas",
               "Elena", "Marcus", "Priya", "Lukas", "Grace", "Omar"]
LAST_NAMES = ["Alvarez", "Bennett", "Okafor", "Lindqvist", "Nakamura", "Patel", "Rossi", "Schmidt", "Walsh",
              "Haddad", "Kowalski", "Moreau", "Fischer", "Tanaka", "Osei", "Brennan"]
ROLES = ["CEO", "chief executive", "CFO", "chief financial officer", "COO", "president", "chairman"]
UNIONS = ["United Auto Workers", "Teamsters", "machinists' union", "nurses' union", "dockworkers' union",
          "pilots' union", "Unite"]
REGULATORS = ["SEC", "FTC", "Justice Department", "European Commission", "CFTC", "FCA", "New York attorney general",
              "EU competition regulator"]
TOPICS = ["accounting practices", "data privacy", "antitrust concerns", "sales practices", "emissions reporting",
          "bribery allegations", "disclosure failures", "consumer complaints"]
DRUG_REGULATORS = ["FDA", "EMA", "Health Canada", "U.S. FDA", "European Commission", "Japan's PMDA"]
DRUG_STEMS = (["Zel", "Vora", "Tren", "Lumi", "Oxa", "Bre", "Cala", "Fexi", "Nira", "Sota"],
              ["vor", "lix", "tra", "mab", "zan", "pri", "dolo"],
              ["imab", "tinib", "stat", "ex", "vir", "zumab"])
CONDITIONS = ["breast cancer", "type 2 diabetes", "migraine", "psoriasis", "heart failure", "obesity",
              "Alzheimer's disease", "lung cancer", "rare blood disorder"]
DEVICES = ["glucose monitor", "heart valve", "surgical robot", "AI imaging tool", "insulin pump"]
PRODUCTS = ["AI chip", "electric pickup truck", "cloud security platform", "foldable smartphone",
            "streaming service", "payments app", "plant-based burger", "5G router", "budget airline route",
            "smart thermostat", "enterprise AI assistant", "credit card for small businesses"]
CUSTOMERS = ["the Pentagon", "the U.S. Army", "NASA", "a major U.S. airline", "the UK government",
             "a European utility", "a Fortune 500 retailer", "the U.S. Navy", "a national railway"]
THEMES = ["AI data centers", "battery technology", "autonomous driving", "cloud services", "drug discovery",
          "digital payments", "renewable energy", "chip manufacturing"]
REGIONS = ["Europe", "Asia", "China", "Latin America", "the U.S.", "India", "Japan"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WHEN = ["on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "next month", "this week",
        "at year-end"]
UP = ["rise", "jump", "climb", "surge", "gain", "rally", "soar", "rise"]
DOWN = ["fall", "drop", "slide", "slump", "sink", "tumble", "fall"]
PREFIXES = ["", "", "", "", "", "", "BRIEF-", "UPDATE 1-", "UPDATE 2-", "BREAKING: ", "Exclusive: "]
SUFFIXES = ["", "", "", "", "", " - Reuters", " | Reuters", " - Bloomberg", " - MarketWatch", " (Dow Jones)",
            " - Seeking Alpha", " - CNBC"]

# Two-event headlines: "<subject> <lead clause><sep><second clause>", labelled by the lead clause.
# Both orders of every pair occur, so the two labels have the same bag of words and only the word
# order tells them apart. Clauses of firm-subject classes drop " {co}" when used second.
CLAUSES: dict[str, tuple[str, list[str]]] = {
    "Earnings Beat": ("co", ["beats {q} estimates", "tops {q} profit forecasts", "posts better-than-expected {q} results"]),
    "Earnings Miss": ("co", ["misses {q} estimates", "falls short of {q} profit forecasts",
                             "posts weaker-than-expected {q} results"]),
    "Guidance Raise": ("co", ["raises {yr} outlook", "lifts full-year forecast", "boosts {yr} guidance"]),
    "Guidance Cut": ("co", ["cuts {yr} outlook", "lowers full-year forecast", "trims {yr} guidance"]),
    "Dividend Initiation": ("co", ["initiates quarterly dividend", "declares first dividend of {d_lo}"]),
    "Dividend Increase": ("co", ["raises dividend {pct}%", "boosts quarterly payout to {d_hi}"]),
    "Dividend Cut": ("co", ["cuts dividend", "suspends quarterly payout"]),
    "Share Buyback": ("co", ["announces {amt} buyback", "authorizes {amt} share repurchase"]),
    "Layoffs": ("co", ["to cut {jobs} jobs", "lays off {pct}% of staff"]),
    "Executive Change": ("co", ["names {person} {role}", "says {role} {person} will step down"]),
    "Merger Announced": ("co", ["to buy {co2} for {amt}", "agrees to acquire {co2}"]),
    "Merger Completed": ("co", ["completes {co2} acquisition", "closes {amt} purchase of {co2}"]),
    "Product Launch": ("co", ["unveils {product}", "launches {product}"]),
    "Partnership": ("co", ["partners with {co2} on {theme}", "teams up with {co2}"]),
    "Contract Win": ("co", ["wins {amt} contract from {customer}", "lands {customer} deal"]),
    "Product Approval": ("co", ["wins {drugreg} approval for {drug}", "gets {drugreg} nod for {device}"]),
    "Stock Split": ("co", ["announces {ratio} stock split", "plans {ratio} split"]),
    "Bankruptcy": ("co", ["files for Chapter 11", "seeks bankruptcy protection"]),
    "Debt Issuance": ("co", ["prices {amt} bond offering", "sells {amt} of notes"]),
    "Analyst Upgrade": ("firm", ["upgrades {co} to {r_up}", "raises {co} to {r_up}"]),
    "Analyst Downgrade": ("firm", ["downgrades {co} to {r_dn}", "cuts {co} to {r_dn}"]),
    "Price Target Raise": ("firm", ["raises {co} price target to {p_hi}", "lifts {co} target to {p_hi}"]),
    "Price Target Cut": ("firm", ["cuts {co} price target to {p_lo}", "lowers {co} target to {p_lo}"]),
}
PAIRS: list[tuple[str, str]] = [
    ("Earnings Beat", "Guidance Raise"), ("Earnings Beat", "Guidance Cut"), ("Earnings Miss", "Guidance Cut"),
    ("Earnings Miss", "Guidance Raise"), ("Earnings Beat", "Dividend Increase"), ("Earnings Beat", "Share Buyback"),
    ("Guidance Raise", "Share Buyback"), ("Dividend Increase", "Share Buyback"), ("Dividend Initiation", "Share Buyback"),
    ("Dividend Increase", "Stock Split"), ("Dividend Cut", "Earnings Miss"), ("Dividend Cut", "Layoffs"),
    ("Layoffs", "Guidance Cut"), ("Layoffs", "Earnings Miss"), ("Layoffs", "Executive Change"),
    ("Layoffs", "Merger Completed"), ("Layoffs", "Bankruptcy"), ("Executive Change", "Guidance Cut"),
    ("Executive Change", "Merger Completed"), ("Merger Announced", "Guidance Raise"), ("Merger Announced", "Layoffs"),
    ("Product Launch", "Partnership"), ("Contract Win", "Partnership"), ("Product Approval", "Product Launch"),
    ("Debt Issuance", "Share Buyback"), ("Debt Issuance", "Merger Announced"),
    ("Analyst Upgrade", "Price Target Raise"), ("Analyst Downgrade", "Price Target Cut"),
    ("Analyst Downgrade", "Price Target Raise"), ("Analyst Upgrade", "Price Target Cut"),
]
SEPARATORS = [", ", "; ", " and ", ", "]
COMPOSITE_RATE = 0.4  # share of headlines of a paired class that report two events
