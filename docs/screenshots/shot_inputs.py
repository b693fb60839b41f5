"""The inputs of the screenshots, made on the fly by real libraries: a tiny gpt-oss checkpoint
with a synthetic tokenizer, the demo model, PDFs (fpdf2), a Word file (python-docx) and the
plain files that wait in the attachment tray."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import shot_text as t

MODEL_NAME = "tiny-synthetic-gpt-oss"


@dataclass(frozen=True)
class Inputs:
    """Where the parent process put everything; every child finds it from `folder` alone."""

    folder: Path

    @property
    def model(self) -> Path:
        return self.folder / MODEL_NAME

    @property
    def demo_model(self) -> Path:
        return self.folder / "demo-model"

    @property
    def notes_pdf(self) -> Path:
        return self.folder / "mxfp4-notes.pdf"

    @property
    def tray(self) -> Path:
        return self.folder / "tray"

    def tray_files(self) -> list[Path]:
        """The Word file first: it is the one the draft talks about."""
        names = ["memory-profiles.docx", *t.TRAY_TEXTS, "benchmark-slides.pdf"]
        return [self.tray / name for name in names]

    @property
    def report(self) -> Path:
        return self.folder / t.REPORT_NAME


def make_all(inputs: Inputs) -> None:
    from engine.testing.demo import write_demo_model

    make_model(inputs.model)
    write_demo_model(inputs.demo_model)
    make_notes_pdf(inputs.notes_pdf)
    inputs.tray.mkdir()
    make_docx(inputs.tray / "memory-profiles.docx")
    for name, text in t.TRAY_TEXTS.items():
        (inputs.tray / name).write_text(text, encoding="utf-8")
    make_slides_pdf(inputs.tray / "benchmark-slides.pdf")
    make_report(inputs.report)


def make_model(out: Path) -> Path:
    """A tiny gpt-oss checkpoint with the real vocabulary, plus a synthetic tokenizer."""
    from engine.testing.synthetic import tiny_config, write_checkpoint
    from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer
    from engine.tokenizer import N_VOCAB

    write_checkpoint(out, tiny_config(vocab_size=N_VOCAB))
    write_synthetic_tokenizer(out)
    return out


def make_notes_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(t.NOTES[0])
    for page, lines in enumerate((t.NOTES[:3], t.NOTES[3:])):
        pdf.add_page()
        pdf.set_font("Helvetica", "B" if page == 0 else "", 16 if page == 0 else 12)
        for i, line in enumerate(lines):
            if page == 0 and i == 1:
                pdf.set_font("Helvetica", "", 12)
            pdf.multi_cell(0, 8, line)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def make_slides_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF(orientation="landscape")
    for title in ("Decode speed by profile", "Prefill speed by profile", "Memory at 8k tokens"):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 24)
        pdf.multi_cell(0, 12, title)
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Memory profiles", level=1)
    document.add_paragraph(
        "Full keeps attention and the unembedding in bf16; the 16 GB profile stores them in "
        "8 bits and keeps a smaller KV cache."
    )
    document.save(str(path))
    return path


def report_pages() -> list[str]:
    """REPORT_PAGES pages of an operations record; page FACT_PAGE holds the facts asked for."""
    rng = random.Random(1987)
    months = t.MONTHS.split()
    pages = []
    for number in range(1, t.REPORT_PAGES + 1):
        year = 1987 + (number - 1) * 38 // t.REPORT_PAGES
        paragraphs = []
        for _ in range(4):
            topic = rng.choice(t.REPORT_TOPICS)
            sentences = [
                sentence.format(
                    topic=topic,
                    year=year,
                    month=rng.choice(months),
                    hours=rng.randrange(2, 8000),
                    share=rng.randrange(40, 96),
                    money=rng.randrange(20, 900) * 1000,
                    days=rng.randrange(2, 30),
                )
                for sentence in rng.sample(t.REPORT_SENTENCES, 4)
            ]
            paragraphs.append(" ".join(sentences))
        if number == t.FACT_PAGE:
            paragraphs[2:2] = t.FACTS
        pages.append(f"{year}: operations, page {number}\n\n" + "\n\n".join(paragraphs))
    return pages


def make_report(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(t.REPORT_TITLE)
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    for text in report_pages():
        pdf.add_page()
        pdf.multi_cell(0, 4.5, text)
    pdf.output(str(path))
    return path
