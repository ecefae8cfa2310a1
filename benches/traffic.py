"""Realistic pixel traffic for the load kit: one request per line,
"<path>\t<user agent>", with valid checksums.

    python3 benches/traffic.py [requests=20000] [parties=3000] [seed=1] > traffic.txt

A few thousand parties, each with its own session and page views; about
70% page views and 30% custom events with parameters (in the tag's
mincode); two dozen real user agents (desktop, mobile, bots); about 2%
exact repeats, as browsers and proxies retry."""
import random
import string
import sys
import urllib.parse

import mmh3

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
PARTIES = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.97",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/105.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 YaBrowser/23.11 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
]
PAGES = ["/", "/search?q={w}+{w2}&page={n}", "/product/{id}", "/category/{w}/{w2}/", "/basket", "/checkout", "/blog/{w}-{w2}"]
WORDS = ["shoes", "running", "jeans", "summer", "sale", "boots", "kids", "winter", "jackets", "bags", "socks", "hats"]
EVENTS = ["addToBasket", "bannerClick", "videoPlay", "scrollDepth", "search"]
B36 = string.digits + string.ascii_lowercase
ID_CHARS = string.ascii_letters + string.digits + "_~"


def base36(n):
    neg, n, out = n < 0, abs(n), ""
    while True:
        out = B36[n % 36] + out
        n //= 36
        if n == 0:
            return ("-" if neg else "") + out


def ident(ts):
    return "0:%s:%s" % (base36(ts), "".join(rng.choice(ID_CHARS) for _ in range(32)))


def mincode_string(s):
    return s.replace("~", "~~").replace("!", "~!")


def params():
    sku = "sku-%05d" % rng.randrange(100000)
    return "(s%s!%s!d%s!%s!j%s!%s!)" % ("product", sku, "quantity", base36(rng.randrange(1, 5)), "price",
                                        "%.2f" % (rng.randrange(100, 20000) / 100))


def query(pairs):
    canonical = "".join("%s=%s,;" % (k, v) for k, v in sorted(pairs))
    x = mmh3.hash(canonical.encode("utf-8"), 0, signed=True)
    enc = [k + "=" + urllib.parse.quote(v, safe="-_.!~*'()") for k, v in pairs]
    return "&".join(enc + ["x=" + base36(x)])


now = 1700000000000
parties = []
for i in range(PARTIES):
    ts = now - rng.randrange(10**9)
    parties.append({"p": ident(ts), "s": ident(now - rng.randrange(10**6)), "ua": rng.choice(AGENTS), "pv": None, "n": 0})

lines = []
for i in range(N):
    if lines and rng.random() < 0.02:
        lines.append(rng.choice(lines[-200:]))
        continue
    party = rng.choice(parties)
    page = rng.choice(PAGES).format(w=rng.choice(WORDS), w2=rng.choice(WORDS), n=rng.randrange(1, 9),
                                    id=rng.randrange(100000, 999999))
    custom = party["pv"] is not None and rng.random() < 0.3
    if not custom:
        party["pv"] = "0:" + "".join(rng.choice(ID_CHARS) for _ in range(32))
        party["n"] = 0
    event_id = party["pv"] + base36(party["n"])
    party["n"] += 1
    pairs = [("p", party["p"]), ("s", party["s"]), ("v", party["pv"]), ("e", event_id),
             ("c", base36(now + i)), ("n", "f"), ("f", "t" if party["n"] == 1 else "f"),
             ("l", "https://shop.example.com" + page), ("r", "https://www.google.com/search?q=" + rng.choice(WORDS)),
             ("i", base36(1920)), ("j", base36(1080)), ("k", "2"), ("w", base36(1440)), ("h", base36(900)),
             ("t", rng.choice(EVENTS) if custom else "pageView")]
    if custom:
        pairs.append(("u", params()))
    lines.append("/csc-event?" + query(pairs) + "\t" + party["ua"])

sys.stdout.write("\n".join(lines) + "\n")
