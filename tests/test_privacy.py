"""The private-content detector on a table of prompts: what must keep a prompt on this machine,
and look-alikes that must not (versions, dates, hashes, numbers in code)."""

from __future__ import annotations

import random
import string

import pytest

from leeroo_local.privacy import detect

_rng = random.Random(7)


def _token(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


CARDS = ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5555555555554444",
         "5105 1051 0510 5100", "378282246310005", "3714 496353 98431", "6011111111111117",
         "6011 0009 9013 9424", "4012888888881881", "4222222222222", "3530111333300000",
         "2223003122003222", "36227206271667"]
IBANS = ["GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "DE89 3704 0044 0532 0130 00",
         "DE89370400440532013000", "FR14 2004 1010 0505 0001 3M02 606", "NL91 ABNA 0417 1643 00",
         "ES91 2100 0418 4502 0005 1332", "IT60 X054 2811 1010 0000 0123 456",
         "CH93 0076 2011 6238 5295 7", "BE68 5390 0754 7034", "AT61 1904 3002 3457 3201",
         "PL61 1090 1014 0000 0712 1981 2874", "SE45 5000 0000 0583 9825 7466",
         "NO93 8601 1117 947", "DK50 0040 0440 1162 43", "FI21 1234 5600 0007 85",
         "IE29 AIBK 9311 5212 3456 78", "PT50 0002 0123 1234 5678 9015 4"]
EMAILS = ["jane.doe@example.com", "j.smith+newsletter@mail.co.uk", "first_last@sub.domain.org",
          "ADMIN@Company.IO", "x@y.museum", "support-team@my-company.de", "o'neil@example.com",
          "user123@gmail.com"]
PHONES = ["+1 415 555 2671", "+44 20 7946 0958", "+49 30 123456", "+33 1 42 68 53 00",
          "+442079460958", "(415) 555-2671", "415-555-2671", "415.555.2671", "020 7946 0958",
          "030 1234567", "+81 3-1234-5678", "+91 98765 43210", "+61 2 9374 4000"]
KEYS = [
    ("api-key:openai", lambda: "sk-" + _token(48)),
    ("api-key:openai", lambda: "sk-proj-" + _token(40, string.ascii_letters + string.digits + "_-")),
    ("api-key:anthropic", lambda: "sk-ant-api03-" + _token(60)),
    ("api-key:aws", lambda: "AKIA" + _token(16, string.ascii_uppercase + string.digits)),
    ("api-key:github", lambda: "ghp_" + _token(36)),
    ("api-key:github", lambda: "github_pat_" + _token(82, string.ascii_letters + string.digits + "_")),
    ("api-key:gitlab", lambda: "glpat-" + _token(20)),
    ("api-key:slack", lambda: "xoxb-" + _token(12, string.digits) + "-" + _token(24)),
    ("api-key:google", lambda: "AIza" + _token(35)),
    ("api-key:stripe", lambda: "sk_live_" + _token(24)),
    ("api-key:huggingface", lambda: "hf_" + _token(34)),
    ("api-key:jwt", lambda: "eyJ" + _token(20) + ".eyJ" + _token(40) + "." + _token(43)),
]
FRAMES = ["{}", "my card is {} thanks", "Pay to {}.", "contact: {}", "Please call {} tomorrow.",
          "Here it is:\n{}\n", "(see {})", "key={}"]

POSITIVE: list[tuple[str, str]] = []
for i, card in enumerate(CARDS):
    POSITIVE.append((FRAMES[i % len(FRAMES)].format(card), "payment-card"))
for i, iban in enumerate(IBANS):
    POSITIVE.append((FRAMES[(i + 1) % len(FRAMES)].format(iban), "iban"))
for i, email in enumerate(EMAILS):
    POSITIVE.append((FRAMES[(i + 2) % len(FRAMES)].format(email), "email"))
    POSITIVE.append((f"Forward this to <{email}> please", "email"))
for i, phone in enumerate(PHONES):
    POSITIVE.append((FRAMES[(i + 3) % len(FRAMES)].format(phone), "phone"))
for rule, make in KEYS:
    for frame in ("{}", "OPENAI_API_KEY={}", "client = Client(token='{}')", "export KEY=\"{}\""):
        POSITIVE.append((frame.format(make()), rule))
POSITIVE += [
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----", "private-key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r", "private-key"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQ", "private-key"),
    ("-----BEGIN EC PRIVATE KEY-----", "private-key"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----", "private-key"),
    ('password = "hunter2hunter2"', "api-key:assigned"),
    ("API_KEY: 'f3a9c1d2e4b5a6c7'", "api-key:assigned"),
    ('{"client_secret": "8f14e45fceea167a5a36dedd4bea2543"}', "api-key:assigned"),
    ("Authorization: Bearer abcdef0123456789abcdef", "api-key:bearer"),
    ("curl -H 'authorization: bearer Zm9vYmFyYmF6cXV4cXV1eA=='", "api-key:bearer"),
    ("open /home/alice/Documents/taxes-2024.pdf", "home-path"),
    ("Traceback: File \"/home/bob/projects/app/main.py\", line 3", "home-path"),
    ("cat /Users/carol/Desktop/notes.txt", "home-path"),
    (r"C:\Users\dave\AppData\Roaming\secrets.json", "home-path"),
    ("edit ~/.ssh/config", "home-path"),
    ("source ~/.bashrc", "home-path"),
    ("my notes are in ~/notes/medical.md", "home-path"),
    ("/home/eve/.aws/credentials has my keys", "home-path"),
]

NEGATIVE = [
    # versions
    "Upgrade to Python 3.11.7", "numpy==1.26.4 and pandas>=2.2.0", "v2.10.4", "release 10.0.19045.3803",
    "Chrome 156.0.8078.73", "llama.cpp b3456", "CUDA 12.4.1", "node v20.20.2", "gcc 12.2.0-14",
    "semver 1.0.0-rc.1+build.5", "kernel 6.1.0-18-amd64", "Version 4.4.0.1234",
    # dates and times
    "2024-01-15", "15/03/2024", "03.12.2023", "on 2026-12-07 at 06:06:44 UTC", "12:30:45.123",
    "from 1999-12-31 to 2000-01-01", "Q3 2024", "Mon Dec  7 06:06:44 UTC 2026", "20240115T120000Z",
    "the years 1914-1918", "2024-2025 season", "week 52 of 2024",
    # hashes and ids in code
    "commit 617065b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7",
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "uuid 550e8400-e29b-41d4-a716-446655440000", "md5 d41d8cd98f00b204e9800998ecf8427e",
    "etag \"33a64df551425fcc55e4d42a148795d9f25f89d4\"", "git checkout a3f5c9e",
    "docker image sha256:9b2a7f0e1c", "request id 7f3a2b1c-0000-4000-8000-000000000000",
    # numbers in code and maths
    "x = 1234567", "for i in range(1000000):", "assert f(12345678) == 87654321",
    "print(3 + 4 == 7)", "MAX = 2**63 - 1", "0x7fffffff", "timeout=30000", "1e-9 * 6.022e23",
    "arr = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", "9,607 questions and 4,439 prompts",
    "The population is 8,000,000,000", "pi = 3.14159265358979", "factorial(20) = 2432902008176640000",
    "1234567890123456", "4111 1111 1111 1112", "0000 0000 0000 0000", "1111-2222-3333-4444",
    "GB82 WEST 1234 5698 7654 33", "DE89 3704 0044 0532 0130 01", "XX12 3456 7890 1234",
    "port 8080", "127.0.0.1:8642", "192.168.1.100", "10.0.0.1/24", "Room 101", "ISBN 978-3-16-148410-0",
    "order #100-200-3000", "zip code 94103", "call 911", "ext. 4021", "page 12-14",
    "score 3-2", "1+2345678", "temperature 0.7 top_p 0.95", "a 24GB GPU", "Q4_K_M 241 MiB",
    "matrix 4096x4096", "lat 51.5074, lon -0.1278", "ratio 16:9", "1-800", "+1",
    "x+1234567", "y = a+12345678", "step 1/2/3", "1 2 3 4 5 6 7 8 9",
    # e-mail look-alikes
    "@app.route('/v1/models')", "@property", "git@github.com:ulab-uiuc/LLMRouter.git",
    "npm i @types/node", "user@localhost", "a @ b . com", "email me at name at example dot com",
    "ssh root@10.0.0.1", "python -m pip install leeroo-local[dev]", "@dataclass(frozen=True)",
    # key look-alikes
    "sk-learn is not a package name", "the sk- prefix", "AKIA is a prefix", "ghp_ tokens",
    "hf_hub_download(repo_id=...)", "AIza", "eyJ is how JWTs start", "xoxb-", "sk_live_ is Stripe's",
    'password = ""', "password: str = Field(...)", "api_key = os.environ['KEY']",
    "authorization: bearer <token>", "BEGIN TRANSACTION; -- PRIVATE KEY column",
    "-----BEGIN CERTIFICATE-----", "-----BEGIN PUBLIC KEY-----", "ssh-rsa AAAAB3NzaC1yc2E= me@host",
    # paths that are not a user's home
    "/usr/lib/python3/dist-packages", "/etc/hosts", "/tmp/leeroo-ci.XXXX", "/var/log/syslog",
    "/opt/pypi/simple", "./models/gemma.gguf", "../shared/data", "C:\\Program Files\\App",
    "/home", "/Users", "https://example.com/home/docs", "src/home/page.tsx", "$HOME is set",
    # prose
    "Draft a polite email to my landlord", "Write a Python function that reverses a linked list",
    "What is the capital of France?", "Explain the Luhn algorithm", "My phone is broken",
    "What is an IBAN?", "Summarise this paragraph about credit cards.", "Solve 12 * 34 = ?",
    "The three primary colours are", "List 5 prime numbers: 2, 3, 5, 7, 11",
    "Translate 'bonjour' to English", "Who wrote Hamlet?", "Chapter 3, verse 16",
    "In 1492 Columbus sailed", "Sort [5, 3, 9, 1] ascending", "",
]


@pytest.mark.parametrize("text,rule", POSITIVE, ids=[f"{r}-{i}" for i, (_, r) in enumerate(POSITIVE)])
def test_private_content_is_found(text, rule):
    found = detect(text)
    assert found is not None and found.rule == rule, (text, found)
    assert 0 <= found.start < found.end <= len(text)


@pytest.mark.parametrize("text", NEGATIVE, ids=[f"neg-{i}" for i in range(len(NEGATIVE))])
def test_look_alikes_do_not_fire(text):
    assert detect(text) is None, (text, detect(text))


def test_the_table_is_large_and_balanced():
    assert len(POSITIVE) + len(NEGATIVE) >= 200
    assert len(POSITIVE) >= 90 and len(NEGATIVE) >= 90


def test_a_finding_carries_no_text():
    found = detect("call me at +44 20 7946 0958")
    assert set(vars(found)) == {"rule", "start", "end"}
