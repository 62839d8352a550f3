"""Regenerate the PDF and DOCX documents of the sample Harbor help centre.

Writes ``help-centre/docs/pricing-sheet.pdf`` (with fpdf2) and ``help-centre/docs/admin-guide.docx``
(with python-docx) next to this script. Dates, metadata and ZIP timestamps are fixed, so a rerun
with the same library versions produces byte-identical files.

Usage::

    python examples/make_documents.py
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import docx
from fpdf import FPDF

DOCS_DIRECTORY = Path(__file__).resolve().parent / "help-centre" / "docs"
PUBLISHED_AT = datetime(2024, 9, 1, 9, 0, tzinfo=UTC)
AUTHOR = "Harbor Labs GmbH"

PLAN_COMPARISON: tuple[tuple[str, ...], ...] = (
    ("Feature", "Free", "Team", "Business", "Enterprise"),
    ("Price per member, billed annually", "$0", "$8", "$15", "Custom"),
    ("Price per member, billed monthly", "$0", "$10", "$18", "Annual only"),
    ("Members", "Up to 3", "Unlimited", "Unlimited", "Unlimited"),
    ("Storage per workspace", "2 GB", "100 GB", "1 TB", "Custom"),
    ("Uptime SLA", "-", "-", "99.9%", "99.95%"),
    ("First support response", "Community forum", "1 business day", "4 hours", "1 hour"),
    ("SAML single sign-on", "-", "-", "Yes", "Yes"),
    ("SCIM provisioning", "-", "-", "-", "Yes"),
    ("Audit log", "-", "-", "Yes", "Yes"),
    ("Customer-managed encryption keys", "-", "-", "-", "Yes"),
)

VOLUME_DISCOUNTS: tuple[tuple[str, str], ...] = (
    ("Paid seats on the order", "Discount on list price"),
    ("1 - 49", "None"),
    ("50 - 199", "10%"),
    ("200 - 499", "15%"),
    ("500 - 999", "20%"),
    ("1,000 or more", "Custom, ask sales"),
)

CONTRACT_TERMS: tuple[tuple[str, str], ...] = (
    (
        "Minimum term",
        "Enterprise contracts run for at least 12 months and cover at least 25 paid seats.",
    ),
    (
        "Payment terms",
        "Invoices are payable net 30 from the invoice date, by bank transfer or card.",
    ),
    (
        "Renewal",
        "Contracts renew automatically for another 12 months unless either party gives "
        "written notice at least 60 days before the renewal date.",
    ),
    (
        "Price protection",
        "List prices on a signed contract are locked for 24 months from the start date.",
    ),
    (
        "Adding seats",
        "Seats added during the term are prorated to the renewal date and invoiced in a "
        "quarterly true-up. Seats cannot be removed before the renewal date.",
    ),
    (
        "Special pricing",
        "Registered nonprofits receive 50% off the Team and Business plans. Accredited "
        "schools and universities receive 30% off. Special pricing does not combine with "
        "volume discounts.",
    ),
    ("Quotes", "Quotes are valid for 30 days from the date of issue."),
)

ROLE_PERMISSIONS: tuple[tuple[str, ...], ...] = (
    ("Permission", "Owner", "Admin", "Member", "Guest"),
    ("Manage plan, billing and invoices", "Yes", "No", "No", "No"),
    ("Invite and remove members", "Yes", "Yes", "Invite only", "No"),
    ("Invite guests to a space", "Yes", "Yes", "Yes", "No"),
    ("Create spaces", "Yes", "Yes", "Yes", "No"),
    ("Configure SSO, 2FA rules and domains", "Yes", "Yes", "No", "No"),
    ("View and export the audit log", "Yes", "Yes", "No", "No"),
    ("Edit notes", "Yes", "Yes", "Yes", "Invited spaces only"),
    ("Delete the workspace", "Yes", "No", "No", "No"),
)

WORKSPACE_LIMITS: tuple[tuple[str, str], ...] = (
    ("Limit", "Value"),
    ("Members per workspace", "5,000 (Enterprise: 50,000)"),
    ("Guests", "5 per paid member"),
    ("Spaces per workspace", "1,000"),
    ("Levels of nested notes", "10"),
    ("Text in one note", "2 million characters"),
    ("Pinned notes per space", "20"),
)


def write_pricing_sheet(path: Path) -> None:
    """Write the two-page pricing sheet: plans and volume discounts, then contract terms."""
    pdf = FPDF(format="A4")
    pdf.set_title("Harbor Pricing Sheet 2024")
    pdf.set_author(AUTHOR)
    pdf.set_subject("Plan comparison, volume discounts and contract terms")
    pdf.set_creator("examples/make_documents.py")
    pdf.set_creation_date(PUBLISHED_AT)
    pdf.set_margins(18, 18)

    pdf.add_page()
    pdf.set_font("helvetica", "B", 20)
    pdf.cell(text="Harbor Pricing Sheet", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    pdf.multi_cell(
        0,
        6,
        "Effective 1 September 2024. Prices are in US dollars per member per month and exclude "
        "taxes. Guests are free on every plan.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    _section_heading(pdf, "Plan comparison")
    with pdf.table(col_widths=(46, 24, 28, 28, 28), text_align="LEFT") as table:
        for row in PLAN_COMPARISON:
            table.row(row)
    _section_heading(pdf, "Volume discounts")
    pdf.multi_cell(
        0,
        6,
        "Volume discounts apply to annual Business and Enterprise contracts and are based on "
        "the total number of paid seats on one order.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    with pdf.table(col_widths=(60, 60), width=120, align="LEFT", text_align="LEFT") as table:
        for discount_row in VOLUME_DISCOUNTS:
            table.row(discount_row)

    pdf.add_page()
    _section_heading(pdf, "Contract terms")
    for term, text in CONTRACT_TERMS:
        pdf.set_font("helvetica", "B", 11)
        pdf.cell(text=term, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=10)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(4)
    pdf.multi_cell(
        0,
        6,
        "To request a quote or an order form, email sales@harbor.example.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.output(str(path))


def _section_heading(pdf: FPDF, text: str) -> None:
    """Write a bold section heading with some space above it."""
    pdf.ln(6)
    pdf.set_font("helvetica", "B", 14)
    pdf.cell(text=text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("helvetica", size=10)


def write_admin_guide(path: Path) -> None:
    """Write the administrator guide: roles, audit log, workspace limits and domains."""
    document = docx.Document()
    properties = document.core_properties
    properties.title = "Harbor Administrator Guide"
    properties.author = AUTHOR
    properties.last_modified_by = AUTHOR
    properties.subject = "Roles, audit log and workspace limits"
    properties.created = PUBLISHED_AT
    properties.modified = PUBLISHED_AT
    properties.revision = 1

    document.add_heading("Harbor Administrator Guide", level=0)
    document.add_paragraph(
        "This guide is for workspace owners and admins of Harbor 4.2: who can do what, how the "
        "audit log works, the limits of a workspace, and how to verify your company's domain."
    )

    document.add_heading("Roles and permissions", level=1)
    document.add_paragraph(
        "Every workspace has exactly one Owner, any number of Admins and Members, and optional "
        "Guests. Guests only see the spaces they are invited to."
    )
    _add_table(document, ROLE_PERMISSIONS)
    document.add_heading("Transferring ownership", level=2)
    document.add_paragraph(
        "Open Settings > Workspace > Transfer ownership and pick an Admin. The new owner has 3 "
        "days to accept by email; until then nothing changes. The previous owner becomes an Admin."
    )
    document.add_heading("Guests", level=2)
    document.add_paragraph(
        "Guests are free. A workspace can have up to 5 guests for every paid member, and an admin "
        "can remove a guest's access at any time from Settings > Members > Guests."
    )

    document.add_heading("Audit log", level=1)
    document.add_paragraph(
        "The audit log is available on the Business and Enterprise plans. It records sign-ins, "
        "role changes, exports, API key creation, SSO changes and deleted spaces, with the time, "
        "the member and the IP address of each event."
    )
    document.add_heading("Retention", level=2)
    document.add_paragraph(
        "On the Business plan, audit log events are retained for 1 year. On the Enterprise plan "
        "they are retained for 7 years and can also be streamed to Splunk or Datadog."
    )
    document.add_heading("Exporting the audit log", level=2)
    document.add_paragraph(
        "Open Settings > Security > Audit log, filter by date or member, and click Export CSV. "
        "One export holds up to 100,000 events."
    )

    document.add_heading("Workspace limits", level=1)
    _add_table(document, WORKSPACE_LIMITS)

    document.add_heading("Verifying your domain", level=1)
    document.add_paragraph(
        "Open Settings > Security > Domains, enter your domain and add the TXT record that Harbor "
        "shows, which starts with harbor-verification=, to your DNS. Harbor checks the record "
        "every 15 minutes for up to 72 hours. Once the domain is verified, people who sign up "
        "with an email address at that domain can join the workspace without an invitation."
    )

    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_with_fixed_timestamps(buffer.getvalue()))


def _add_table(document: docx.document.Document, rows: tuple[tuple[str, ...], ...]) -> None:
    """Add a grid table whose first row is a bold header."""
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.style = "Table Grid"
    for row_index, row in enumerate(rows):
        for column_index, text in enumerate(row):
            cell = table.cell(row_index, column_index)
            cell.text = text
            if row_index == 0:
                for run in cell.paragraphs[0].runs:
                    run.bold = True


def _with_fixed_timestamps(archive: bytes) -> bytes:
    """Rewrite a ZIP archive so that every member carries the publication date."""
    output = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as source,
        zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            fixed = zipfile.ZipInfo(member.filename, date_time=PUBLISHED_AT.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(member))
    return output.getvalue()


def main() -> None:
    """Write both documents into the help centre's docs folder."""
    DOCS_DIRECTORY.mkdir(parents=True, exist_ok=True)
    write_pricing_sheet(DOCS_DIRECTORY / "pricing-sheet.pdf")
    write_admin_guide(DOCS_DIRECTORY / "admin-guide.docx")
    print(f"Wrote pricing-sheet.pdf and admin-guide.docx to {DOCS_DIRECTORY}")


if __name__ == "__main__":
    main()
