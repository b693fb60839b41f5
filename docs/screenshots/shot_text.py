"""The words of the screenshots: questions, the scripted reasoning and answers, document text.

Random weights write no sensible text, so every token the model writes in a screenshot is chosen
in advance from these strings (the model, KV cache, harmony parser and streaming still run).
"""

from __future__ import annotations

EARLIER_CHATS = [
    (
        "What does YaRN change in RoPE?",
        "YaRN stretches the rotary frequencies so positions past the trained context still "
        "map to angles the model has seen.",
    ),
    (
        "Sliding vs full attention layers",
        "gpt-oss alternates them: a sliding layer sees a window of the last 128 tokens, a full "
        "layer sees them all.",
    ),
]

# --- conversation-{light,dark}.png --------------------------------------------------------------

QUESTION = "How does gpt-oss store weights in MXFP4?"

REASONING = (
    "The user attached notes on microscaling formats and asks how gpt-oss stores the expert "
    "weights. Key points: blocks of 32 values; each value is an E2M1 nibble, two per byte; one "
    "E8M0 scale byte per block, a power of two with bias 127. Only the MoE expert projections "
    "are quantized; attention, router, embedding and unembedding stay bf16. A short "
    "dequantization function and a table of bits per weight would make it concrete."
)

ANSWER = """\
**MXFP4** is the 4-bit *microscaling* format of the Open Compute Project. gpt-oss keeps the \
weights of its mixture-of-experts layers in it; every other tensor stays in bf16.

Each row is cut into blocks of 32 values. A block is 16 bytes of E2M1 codes (two per byte, \
low nibble first) plus one E8M0 scale byte:

```python
FP4 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
       -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]

def dequantize(block: bytes, scale: int) -> list[float]:
    factor = 2.0 ** (scale - 127)
    return [FP4[n] * factor for b in block for n in (b & 0x0F, b >> 4)]
```

| tensor | format | bits per weight |
|---|---|---:|
| expert MLPs | MXFP4 | 4.25 |
| attention, router | bf16 | 16 |
| embedding, unembedding | bf16 | 16 |

Decoding a token reads only the experts the router picks (4 of 32 per layer in the 20b), so \
the kernels work on the packed bytes directly instead of expanding whole matrices.
"""

DRAFT = "And what changes with the 16 GB memory profile? Compare it with these files."

NOTES = [
    "Microscaling (MX) formats",
    "An MX block holds 32 elements that share one 8-bit scale (E8M0: a power of two, "
    "bias 127). MXFP4 elements are E2M1: one sign bit, two exponent bits, one mantissa bit.",
    "The sixteen E2M1 values are 0, 0.5, 1, 1.5, 2, 3, 4 and 6, each positive or negative.",
    "Storage: 32 x 4 bits + 8 bits = 136 bits per block, i.e. 4.25 bits per element.",
]

# The files waiting in the composer's tray: (name, text), written as the kind the name says.
LONG_NAME = "gpt-oss-20b-evaluation-notes-from-the-reading-group-with-all-the-benchmarks.md"
TRAY_TEXTS = {
    "kernels.py": "def gemv(x, w):\n    return [sum(a * b for a, b in zip(x, r)) for r in w]\n",
    "decode-speeds.csv": "profile,tokens_per_s\nfull,41.8\n16gb,52.3\ncompact,55.0\n",
    LONG_NAME: "# Reading group\n\nWe compared the 20b on three benchmarks.\n",
    "model-card.html": "<html><body><h1>gpt-oss</h1><p>Open-weight reasoning models.</p></body>"
    "</html>\n",
    "changelog.txt": "0.4: memory profiles\n0.3: prompt cache\n0.2: Metal kernels\n",
}

# --- search-hit.png -----------------------------------------------------------------------------

LONG_CHAT = [  # the hit is in the middle: the chat opens scrolled to it
    (
        "Does the prompt cache survive a restart?",
        "Yes. After every answer the processed prompt is written to `prompts/` under the data "
        "folder, with a manifest naming the model, profile and tokenizer. A file made by "
        "another model is ignored.",
    ),
    (
        "How big are those files?",
        "About 13 MB per 1,000 tokens on the 16 GB profile and 25 MB on full. The folder is "
        "capped at 5 GB by default, least recently used first.",
    ),
    (
        "Why does the first token take longer with a long document?",
        "The whole prompt is read before the first token: prefill processes it in chunks of "
        "512 tokens. Follow-ups are fast because the chat's KV cache is kept, and only the new "
        "message is read.",
    ),
    (
        "How long a context can the 20b handle on a 16 GB Mac?",
        "All of its **131,072 tokens** fit, because most layers keep very little: the KV cache "
        "of a sliding-window layer never grows past 128 tokens, so only the full-attention "
        "layers grow with the conversation. On the 16 GB profile those are 8-bit.",
    ),
    (
        "Can I choose the profile myself?",
        "Yes: `--profile full`, `16gb` or `compact` on the command line, for example "
        '`make run ARGS="--profile 16gb"`. Without it the app picks the most precise profile '
        "that fits the Mac.",
    ),
    (
        "Which one is the fastest?",
        "`compact` reads the fewest bytes per token, so it decodes fastest; `full` is the most "
        "precise. The difference is a few percent, because the MXFP4 experts dominate.",
    ),
]
SEARCH_QUERY = "sliding window"
LATEST_CHAT = (
    "Which reasoning effort should I use for code review?",
    "Medium is a good default: High thinks longer but rarely changes a review's findings.",
)

# --- finish-now.png -----------------------------------------------------------------------------

FINISH_QUESTION = "Plan a three-day walking trip in the Lake District for someone who hates crowds."

FINISH_REASONING = (
    "The user wants three days of walking in the Lake District, away from crowds. The busy "
    "places are Windermere, Ambleside, Grasmere and the Scafell Pike path from Wasdale Head on a "
    "summer weekend, so the plan should lean towards the western and northern fells. Day one "
    "could start from Buttermere: the round of Haystacks, Innominate Tarn and the Scarth Gap "
    "pass is about 8 miles and rarely busy before ten. Day two: Ennerdale, the only valley "
    "without a public road, so the forest track up to Black Sail hut is quiet even in August; "
    "a night there needs booking early. Day three: the Back o' Skiddaw, Great Calva and Knott "
    "from Mosedale, where the paths are grassy and it is possible to walk all day and meet no "
    "one. Transport: without a car, the 77 bus from Keswick reaches Buttermere; Ennerdale "
    "needs a taxi from Cockermouth. Weather: Borrowdale is one of the wettest places in "
    "England, so each day needs a low-level alternative, for example Crummock Water's shore "
    "instead of the ridge. Kit: proper boots, a map (OS Explorer OL4), a compass, since the "
    "western fells have fewer cairns. Timing: midweek in late May or September is the "
    "quietest. I should also mention where to stay: the youth hostel at Buttermere, Black Sail "
    "hut, and a farm camp site near Mosedale. Now the order of the days: starting in the west "
    "and ending in the north keeps the travel short, and the hardest walk comes second when "
    "the legs are fresh but not stiff. Distances and climbs for each day would help the user "
    "decide, so I will give both, and the time to allow at an easy pace. Day one: Buttermere to "
    "Haystacks and back by Scarth Gap, 8 miles, 600 m of climb, five hours. Day two: Black Sail "
    "to Pillar by the High Level Route, 9 miles, 850 m, six hours, the longest day; the Robinson's "
    "Cairn path is exposed in places, so in wind or rain the valley track is the alternative. "
    "Day three: Mosedale to Great Calva and Knott, 7 miles, 550 m, four hours, with the bus "
    "back from Mungrisdale only twice a day, which the user must check. Food: the Fish Inn at "
    "Buttermere, and Black Sail serves an evening meal to guests. One more point about crowds: "
    "even the quiet fells are busy on bank holidays, so the dates matter more than the route."
)

# --- cited-answer.png ---------------------------------------------------------------------------

REPORT_NAME = "kestrel-bay-operations-1987-2024.pdf"
REPORT_TITLE = "Kestrel Bay Generating Station: Operations Record 1987-2024"
REPORT_PAGES = 320
FACT_PAGE = 222
FACTS = [
    "After the storm of 14 November 2010 flooded the pump house, the cooling water intake of "
    "Unit 3 was rebuilt between March and September 2011.",
    "The new intake draws water through wedge-wire screens at 0.15 m/s, slow enough for fish "
    "to swim away from them.",
    "In the first two years of monitoring, fish impingement fell by 82 percent against the "
    "2006-2009 average.",
]
CITED_QUESTION = "When was the cooling water intake rebuilt, and did it help the fish?"
CITED_SEARCH = "cooling water intake rebuilt"
CITED_FIND = "impingement"
CITED_PLAN = (
    "The user asks about the cooling water intake in the attached operations record. It is "
    "320 pages long, so I search it."
)
CITED_OPEN_PLAN = "The result from p. {page} mentions the rebuilt intake. I open it."
CITED_FIND_PLAN = "The page names the rebuild; I look for the effect on fish."
CITED_DONE = "I have the dates, the screens and the impingement figure."
# {open}, {find}: citations of the opened page and of the find result.
CITED_ANSWER = """\
The intake of **Unit 3** was rebuilt between **March and September 2011**, after the storm of \
14 November 2010 flooded the pump house {open_rebuilt}.

It did help the fish:

- the new wedge-wire screens draw water at only 0.15 m/s, slow enough for fish to swim away \
{open_screens};
- impingement fell by **82 percent** in the first two years of monitoring, against the \
2006-2009 average {find}.
"""

# Filler of the operations record: plausible, dull, and never about the intake.
REPORT_TOPICS = [
    "turbine hall",
    "boiler feed pump",
    "grid frequency response",
    "planned maintenance outage",
    "coal handling plant",
    "switchyard",
    "flue gas desulphurisation",
    "control room staffing",
    "ash lagoon",
    "generator transformer",
]
REPORT_SENTENCES = [
    "The {topic} ran for {hours:,} hours in {year}, {share} percent of the year.",
    "Inspection of the {topic} in {month} {year} found wear within the expected limits.",
    "The {topic} budget for {year} was {money:,} pounds, of which {share} percent was spent "
    "on contractors.",
    "Two faults in the {topic} were logged in {month}; both were cleared within {days} hours.",
    "The load factor of the station in {year} was {share} percent, with the {topic} the main "
    "cause of lost output.",
    "Staff from the {topic} team completed {hours} hours of safety training during {year}.",
    "A revised procedure for the {topic} was issued in {month} {year} and audited in the autumn.",
]
MONTHS = "January February March April May June July August September October November December"

# The python tool: a question worth computing, the code the model writes, an answer from its output.
PY_QUESTION = (
    "I save $2,500 a month at 4.2% a year, compounded monthly. What do I have after 15 years, "
    "and how much of that is interest?"
)
PY_PLAN = (
    "Future value of monthly deposits. Compute it exactly with python rather than by a formula "
    "from memory, then split deposits from interest."
)
PY_CODE = """\
rate = 0.042 / 12
months = 15 * 12
balance = 0.0
for _ in range(months):
    balance = balance * (1 + rate) + 2500
deposits = 2500 * months
print(f"balance  {balance:,.2f}")
print(f"deposits {deposits:,.2f}")
print(f"interest {balance - deposits:,.2f}")"""
PY_DONE = "The run printed the balance, deposits and interest; answer with those numbers."
PY_ANSWER = """\
After 15 years you would have **${balance}**.

| | Amount |
| --- | ---: |
| Your deposits (180 × $2,500) | ${deposits} |
| Interest earned | **${interest}** |

Interest is about {share}% of the final balance; the deposits are made at the end of each month.
"""
PY_DECLINED = "Understood, no code then. Roughly $625,000, of which about $175,000 is interest."
