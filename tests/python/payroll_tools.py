"""Independent checks of the payroll run's documents, for tests/payroll.rs.

    payroll_tools.py pdf-text FILE       the text pypdf extracts from a PDF, on stdout
    payroll_tools.py sepa FILE           validates a pain.001.001.03 file against the official XSD
                                         that the sepaxml package ships; prints what it counted:
                                         {"valid": true, "nbOfTxs": [...], "ctrlSum": [...], "amounts": "..."}
"""
import json
import os
import sys
from decimal import Decimal

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


def pdf_text(path):
    from pypdf import PdfReader

    reader = PdfReader(path)
    print("\n".join(page.extract_text() for page in reader.pages))


def sepa(path):
    import sepaxml
    import xmlschema
    from xml.etree import ElementTree

    xsd = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", "pain.001.001.03.xsd")
    schema = xmlschema.XMLSchema(xsd)
    errors = [str(e.reason) for e in schema.iter_errors(path)]
    root = ElementTree.parse(path).getroot()
    amounts = [Decimal(a.text) for a in root.iterfind(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", NS)]
    print(json.dumps({
        "valid": not errors,
        "errors": errors[:5],
        "nbOfTxs": [e.text for e in root.iterfind(".//p:NbOfTxs", NS)],
        "ctrlSum": [e.text for e in root.iterfind(".//p:CtrlSum", NS)],
        "transactions": len(amounts),
        "amounts": str(sum(amounts, Decimal("0.00"))),
        "currencies": sorted({a.get("Ccy") for a in root.iterfind(".//p:InstdAmt", NS)}),
    }))


if __name__ == "__main__":
    {"pdf-text": pdf_text, "sepa": sepa}[sys.argv[1]](*sys.argv[2:])
