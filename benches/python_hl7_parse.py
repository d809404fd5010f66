"""python-hl7 (`pip install hl7`) on the same messages as benches/hl7_parse.rs.

Usage: python3 benches/python_hl7_parse.py ROUNDS FILE...
Each file is read as bytes and prepared exactly as the Rust bench prepares the bytes it hands to
every parser: a UTF-8 byte-order mark removed, CRLF and LF turned into CR (python-hl7 only splits
segments on CR). Prints one line per measurement, `label<TAB>µs per message`, for the bench to
read; `corpus` is every file but the last, `oru` the last one.
"""

import sys
import time

import hl7

PATHS = ["MSH.9.1", "MSH.10", "PID.3.1.1", "PID.5.1.1", "OBX.3.1.1", "OBX.5"]


def prepare(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").decode("utf-8")


def read_paths(m) -> int:
    n = 0
    for p in PATHS:
        try:
            n += len(str(m[p]))
        except (IndexError, KeyError):
            pass
    return n


def per_message(messages, rounds, fn) -> float:
    for text in messages[: max(1, len(messages) // 10)]:
        fn(text)
    start = time.perf_counter()
    for _ in range(rounds):
        for text in messages:
            fn(text)
    return (time.perf_counter() - start) * 1e6 / rounds / len(messages)


def main() -> None:
    rounds = int(sys.argv[1])
    files = sys.argv[2:]
    texts = [prepare(open(f, "rb").read()) for f in files]
    corpus, oru = texts[:-1], texts[-1:]
    parse = hl7.parse
    if corpus:
        print(f"corpus parse\t{per_message(corpus, rounds, parse):.2f}")
        print(f"corpus parse+paths\t{per_message(corpus, rounds, lambda t: read_paths(parse(t))):.2f}")
    print(f"oru parse\t{per_message(oru, rounds * 20, parse):.2f}")
    print(f"oru parse+paths\t{per_message(oru, rounds * 20, lambda t: read_paths(parse(t))):.2f}")


if __name__ == "__main__":
    main()
