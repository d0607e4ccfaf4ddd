"""Logster's XML body: `<LogMessage><Message>...</Message>...</LogMessage>`, or several in `<ArrayOfLogMessage>`."""

from __future__ import annotations

from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError as XMLSyntaxError
from defusedxml.ElementTree import fromstring
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

MAX_ELEMENTS = 20_000


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop an XML namespace, as ASP.NET's DataContract one


class LogsterXMLParser(BaseParser):
    """Every value stays a string (djangorestframework-xml would turn `42` into an int and dates into
    datetimes, and so reject valid messages); DTDs, entities and external references are refused."""

    media_type = "application/xml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            root = fromstring(stream.read(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except DefusedXmlException:
            raise ParseError("XML with a DTD, entities or external references is not accepted.") from None
        except XMLSyntaxError as exc:
            raise ParseError(f"XML parse error - {exc}") from None
        if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
            raise ParseError(f"The XML has more than {MAX_ELEMENTS} elements.")
        if _local(root.tag) == "ArrayOfLogMessage":
            return [self._message(child) for child in root]
        return self._message(root)

    def _message(self, element: Any) -> dict[str, str]:
        return {_local(child.tag): child.text or "" for child in element}


class LogsterTextXMLParser(LogsterXMLParser):
    media_type = "text/xml"
