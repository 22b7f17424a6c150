"""Camera metadata (EXIF, GPS, maker data) of any supported file, read with ExifTool.

ExifTool reads every format the engine accepts, RAW included (CR3 boxes, RAF, stripped
ExifTool test files), and tolerates broken EXIF where decoders give up. Values are read
numerically (``-n``) and converted here, so units are fixed: degrees, metres, seconds,
millimetres. Bad or missing metadata never raises: :attr:`Metadata.warnings` says what
was wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from darkroom_imaging.exiftool import (
    ExifTool,
    ExifToolError,
    ExifToolTimeout,
    ExifToolUnavailable,
    shared_exiftool,
)

#: Tags requested from ExifTool (names as in the ExifTool tag tables; GPS ones are the
#: Composite tags, already signed by their Ref).
TAGS: tuple[str, ...] = (
    "Make",
    "Model",
    "LensModel",
    "GPSLatitude",
    "GPSLatitudeRef",
    "GPSLongitude",
    "GPSLongitudeRef",
    "GPSAltitude",
    "GPSAltitudeRef",
    "ISO",
    "FNumber",
    "ExposureTime",
    "FocalLength",
    "FocalLengthIn35mmFormat",
    "Orientation",
    "Flash",
    "WhiteBalance",
    "Artist",
    "Copyright",
    "Software",
    "ImageWidth",
    "ImageHeight",
    "FileType",
    "MIMEType",
    "Warning",
    "Error",
)

#: Tags of the second, group-qualified request (ExifTool ``-G``: keys come back as
#: ``<family 0 group>:<tag>``): the capture-date candidates of :data:`DATE_PRECEDENCE`,
#: every ``DateTimeOriginal`` whatever its group, and ``EXIF:all``/``XMP:all``/``IPTC:all``
#: so that ``no_exif`` is said only of a file that carries none of these blocks.
DATE_TAGS: tuple[str, ...] = (
    "EXIF:DateTimeOriginal",
    "EXIF:OffsetTimeOriginal",
    "EXIF:CreateDate",
    "EXIF:OffsetTimeDigitized",
    "XMP-photoshop:DateCreated",
    "XMP-exif:DateTimeOriginal",
    "IPTC:DateCreated",
    "IPTC:TimeCreated",
    "DateTimeOriginal",
    "EXIF:GPSDateStamp",
    "EXIF:GPSTimeStamp",
    "XMP-exif:GPSDateTime",
    "EXIF:all",
    "XMP:all",
    "IPTC:all",
)

#: Where the capture date comes from, first present and valid wins:
#: ``(source recorded in date_time_original_source, value key, offset key)``; keys are
#: those of the ``-G`` answer. The GPS pair is UTC (an ISO string ending in ``Z``).
#: Between IPTC and GPS, a DateTimeOriginal of any other group (``QuickTime``,
#: ``MakerNotes``...; not ``Composite``, which ExifTool derives from the tags above) is
#: taken with its group as the source.
DATE_PRECEDENCE: tuple[tuple[str, str, str | None], ...] = (
    ("EXIF:DateTimeOriginal", "EXIF:DateTimeOriginal", "EXIF:OffsetTimeOriginal"),
    ("EXIF:CreateDate", "EXIF:CreateDate", "EXIF:OffsetTimeDigitized"),
    ("XMP-photoshop:DateCreated", "XMP:DateCreated", None),
    ("XMP-exif:DateTimeOriginal", "XMP:DateTimeOriginal", None),
    ("IPTC:DateCreated", "IPTC:DateCreated", None),  # + IPTC:TimeCreated
    ("<group>:DateTimeOriginal", "*:DateTimeOriginal", None),
    ("EXIF:GPSDateStamp+GPSTimeStamp", "EXIF:GPSDateStamp", None),  # + EXIF:GPSTimeStamp
    ("XMP-exif:GPSDateTime", "XMP:GPSDateTime", None),
)

#: Family 0 groups whose presence means the file carries camera metadata.
_METADATA_GROUPS = ("EXIF:", "XMP:", "IPTC:", "MakerNotes:")
_DERIVED_GROUPS = ("EXIF", "XMP", "IPTC", "Composite")
#: Tags of :data:`TAGS` that only camera metadata carries (not the file's own size/type).
_CAMERA_TAGS: tuple[str, ...] = ("Make", "Model", "LensModel", "ISO", "FNumber")
_CAMERA_TAGS += ("ExposureTime", "FocalLength", "Orientation", "Flash", "Artist", "Copyright")

_DATETIME = re.compile(
    r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
# XMP and IPTC may hold a date alone, or a time without seconds.
_PARTIAL_DATETIME = re.compile(
    r"^(\d{4}):(\d{2}):(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_ZONED = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_WHITE_BALANCE = {0: "auto", 1: "manual"}


@dataclass(frozen=True, slots=True)
class Metadata:
    """Camera metadata of one file; every field None when the file does not carry it.

    Sources are EXIF 2.32 tags (via ExifTool). ``date_time_original`` is the capture date
    as ISO 8601 (``2024-05-07T09:33:04+08:00``), taken from the first source of
    :data:`DATE_PRECEDENCE` that holds a valid date: EXIF DateTimeOriginal (+
    OffsetTimeOriginal), EXIF CreateDate alias DateTimeDigitized (+ OffsetTimeDigitized),
    XMP-photoshop:DateCreated, XMP-exif:DateTimeOriginal, IPTC DateCreated + TimeCreated,
    a DateTimeOriginal of another group (QuickTime, MakerNotes...), then the GPS time
    (EXIF GPSDateStamp + GPSTimeStamp, or XMP-exif:GPSDateTime; UTC, so it ends in ``Z``).
    The offset is there only when the source gives one (an XMP date without a zone takes
    the zone of its IPTC twin when both name the same second); XMP and IPTC may give a
    date alone (``2022-01-10``). ``date_time_original_source`` names the source
    (``EXIF:DateTimeOriginal``, ``EXIF:CreateDate``, ``XMP-photoshop:DateCreated``,
    ``XMP-exif:DateTimeOriginal``, ``IPTC:DateCreated``, ``QuickTime:DateTimeOriginal``...,
    ``EXIF:GPSDateStamp+GPSTimeStamp``, ``XMP-exif:GPSDateTime``), None when no date was
    found. ``date_time_original_raw`` keeps ExifTool's text of that source (IPTC date and
    time, or GPS date and time, joined by a space) and ``offset_time_original`` the
    OffsetTimeOriginal/OffsetTimeDigitized text used with an EXIF date (None for the
    other sources, whose zone is inside the value). ``gps_latitude``/``gps_longitude`` are signed decimal degrees
    (south/west negative), ``gps_altitude`` metres (negative below sea level,
    GPSAltitudeRef = 1). ``exposure_time`` is ExifTool's fraction text (``1/250``, ``30``)
    and ``exposure_seconds`` the value in seconds; ``focal_length``/``focal_length_35mm``
    in millimetres; ``orientation`` the EXIF value 1–8 (0 or invalid → 1 with a warning);
    ``flash`` the EXIF Flash bit field (bit 0: fired). ``warnings`` lists short codes:
    ``exiftool_unavailable``, ``exiftool_timeout``, ``exiftool_error: <ExifTool's text>``,
    ``exiftool_warning: <ExifTool's text>``, ``no_exif`` (the file carries no EXIF, XMP,
    IPTC or maker-note block at all), ``invalid_date_time_original`` (EXIF
    DateTimeOriginal present but not a date; the next source is used),
    ``invalid_date: <source>`` (the same for another date source), ``invalid_gps``
    (latitude or longitude out of range; both dropped) and ``invalid_orientation: <n>``
    (replaced by 1).
    """

    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    date_time_original: str | None = None
    date_time_original_raw: str | None = None
    offset_time_original: str | None = None
    date_time_original_source: str | None = None
    gps_latitude: float | None = None
    gps_longitude: float | None = None
    gps_altitude: float | None = None
    iso: int | None = None
    f_number: float | None = None
    exposure_time: str | None = None
    exposure_seconds: float | None = None
    focal_length: float | None = None
    focal_length_35mm: float | None = None
    orientation: int | None = None
    flash: int | None = None
    white_balance: str | None = None
    artist: str | None = None
    copyright: str | None = None
    software: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    file_type: str | None = None
    mime_type: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def flash_fired(self) -> bool | None:
        """Bit 0 of the EXIF Flash tag, or None when the tag is absent."""
        return None if self.flash is None else bool(self.flash & 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (None kept, so the shape never changes)."""
        return asdict(self)


def read_metadata(path: Path, *, exiftool: ExifTool | None = None) -> Metadata:
    """Read the camera metadata of ``path`` with ExifTool (default: the shared process).

    Two requests to the one ExifTool process: :data:`TAGS` as plain tag names (ExifTool's
    own choice when several groups hold a tag), then :data:`DATE_TAGS` group-qualified
    (``-G``) for the capture date's source and the metadata blocks present. Never raises
    for a bad file: a missing ExifTool gives a Metadata whose warnings hold
    ``exiftool_unavailable``, a hung one ``exiftool_timeout``, and broken or absent EXIF
    the warnings described on :class:`Metadata`.
    """
    tool = exiftool if exiftool is not None else shared_exiftool()
    try:
        raw = tool.read_tags(Path(path), TAGS)
        grouped = {} if raw.get("Error") else tool.read_tags(Path(path), DATE_TAGS, grouped=True)
    except ExifToolUnavailable:
        return Metadata(warnings=["exiftool_unavailable"])
    except ExifToolTimeout:
        return Metadata(warnings=["exiftool_timeout"])
    except ExifToolError as exc:
        return Metadata(warnings=[f"exiftool_error: {exc}"])
    return from_exiftool(raw, grouped)


def from_exiftool(raw: dict[str, Any], grouped: dict[str, Any] | None = None) -> Metadata:
    """Build a :class:`Metadata` from ExifTool ``-json -n`` objects.

    ``raw`` answers :data:`TAGS` (plain names); ``grouped`` answers :data:`DATE_TAGS`
    with ``-G`` (keys ``<group>:<tag>``). Group-qualified keys found in ``raw`` are used
    too, and a plain ``DateTimeOriginal``/``OffsetTimeOriginal`` in ``raw`` is read as the
    EXIF tag when ``grouped`` lacks it. Without ``grouped``, ``no_exif`` is decided from
    the camera fields found in ``raw``.
    """
    warnings: list[str] = []
    if raw.get("Error"):
        warnings.append(f"exiftool_error: {_text(raw['Error'])}")
    if raw.get("Warning"):
        warnings.append(f"exiftool_warning: {_text(raw['Warning'])}")

    dated = {k: v for k, v in raw.items() if ":" in k}
    dated.update(grouped or {})
    for tag in ("DateTimeOriginal", "OffsetTimeOriginal"):
        if tag in raw and f"EXIF:{tag}" not in dated:
            dated[f"EXIF:{tag}"] = raw[tag]
    dto, dto_raw, offset, source = _capture_date(dated, warnings)

    lat = _signed(_number(raw.get("GPSLatitude")), raw.get("GPSLatitudeRef"), "SsWw")
    lon = _signed(_number(raw.get("GPSLongitude")), raw.get("GPSLongitudeRef"), "SsWw")
    if (lat is not None and abs(lat) > 90) or (lon is not None and abs(lon) > 180):
        warnings.append("invalid_gps")
        lat = lon = None
    alt = _number(raw.get("GPSAltitude"))
    if alt is not None:
        alt = -abs(alt) if _number(raw.get("GPSAltitudeRef")) == 1 else alt

    seconds = _number(raw.get("ExposureTime"))
    if seconds is not None and (seconds <= 0 or not math.isfinite(1 / seconds)):
        seconds = None  # 5e-324 s has no 1/N form
    orientation = _integer(raw.get("Orientation"))
    if orientation is not None and orientation not in range(1, 9):
        warnings.append(f"invalid_orientation: {orientation}")
        orientation = 1

    wb = raw.get("WhiteBalance")
    white_balance = _WHITE_BALANCE.get(wb) if isinstance(wb, int) else _text(wb)
    make = _text(raw.get("Make"))
    model = _text(raw.get("Model"))
    carries = any(k.startswith(_METADATA_GROUPS) for k in dated) or dto_raw is not None
    carries = carries or lat is not None or any(_text(raw.get(t)) for t in _CAMERA_TAGS)
    if not carries:
        warnings.append("no_exif")

    return Metadata(
        make=make,
        model=model,
        lens_model=_text(raw.get("LensModel")),
        date_time_original=dto,
        date_time_original_raw=dto_raw,
        offset_time_original=offset,
        date_time_original_source=source,
        gps_latitude=lat,
        gps_longitude=lon,
        gps_altitude=alt,
        iso=_integer(raw.get("ISO")),
        f_number=_positive(raw.get("FNumber")),
        exposure_time=exposure_fraction(seconds) if seconds is not None else None,
        exposure_seconds=seconds,
        focal_length=_positive(raw.get("FocalLength")),
        focal_length_35mm=_positive(raw.get("FocalLengthIn35mmFormat")),
        orientation=orientation,
        flash=_integer(raw.get("Flash")),
        white_balance=white_balance,
        artist=_text(raw.get("Artist")),
        copyright=_text(raw.get("Copyright")),
        software=_text(raw.get("Software")),
        image_width=_integer(raw.get("ImageWidth")),
        image_height=_integer(raw.get("ImageHeight")),
        file_type=_text(raw.get("FileType")),
        mime_type=_text(raw.get("MIMEType")),
        warnings=warnings,
    )


def exposure_fraction(seconds: float) -> str:
    """ExposureTime as photographers write it, by ExifTool's rule (PrintExposureTime).

    Under 0.25 s: ``1/N`` with N rounded (0.004 → ``1/250``); otherwise seconds with one
    decimal, a trailing ``.0`` dropped (30 → ``30``, 0.5 → ``0.5``).
    """
    if 0 < seconds < 0.25001:
        return f"1/{int(0.5 + 1 / seconds)}"
    text = f"{seconds:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _capture_date(
    dated: dict[str, Any], warnings: list[str]
) -> tuple[str | None, str | None, str | None, str | None]:
    """``(iso, raw text, offset text, source)`` of the first valid :data:`DATE_PRECEDENCE`
    source among the ``-G`` keys of ``dated``; an invalid one adds a warning, is skipped."""
    for source, key, offset_key in DATE_PRECEDENCE:
        candidates = [(source, _text(dated.get(key)))]
        if key.startswith("*:"):
            candidates = [
                (k, _text(v))
                for k, v in dated.items()
                if k.endswith(key[1:]) and k.split(":", 1)[0] not in _DERIVED_GROUPS
            ]
        for name, value in candidates:
            if value is None:
                continue
            offset = _text(dated.get(offset_key)) if offset_key else None
            partial = key.startswith(("XMP:", "IPTC:"))
            if key == "IPTC:DateCreated" and (time := _text(dated.get("IPTC:TimeCreated"))):
                value = f"{value} {time}"
            if key == "EXIF:GPSDateStamp":
                time = _text(dated.get("EXIF:GPSTimeStamp"))
                if time is None:
                    continue  # a UTC date without its time may not be the local day
                value = f"{value} {time}"
            if key.endswith(("GPSDateStamp", "GPSDateTime")):
                offset, partial = "Z", False  # GPS time is UTC (EXIF 2.32 GPSTimeStamp)
            iso = _iso_datetime(value, offset, partial=partial)
            if iso is None:
                exif_dto = name == "EXIF:DateTimeOriginal"
                warnings.append(
                    "invalid_date_time_original" if exif_dto else f"invalid_date: {name}"
                )
                continue
            if key.startswith("XMP:") and len(iso) >= 19 and not _ZONED.search(iso):
                iso += _iptc_zone(dated, iso)
            return iso, value, offset if offset_key else None, name
    return None, None, None, None


def _iptc_zone(dated: dict[str, Any], iso: str) -> str:
    """The zone of IPTC DateCreated + TimeCreated when they give the same local second as
    the XMP date ``iso`` (which has none), else ``""``: XMP-photoshop:DateCreated often
    drops the zone its IPTC twin (IIM 2:60 TimeCreated) keeps."""
    date, time = _text(dated.get("IPTC:DateCreated")), _text(dated.get("IPTC:TimeCreated"))
    twin = _iso_datetime(f"{date} {time}", None, partial=True) if date and time else None
    if twin is None or twin[:19] != iso[:19] or not (zone := _ZONED.search(twin)):
        return ""
    return zone.group(0)


def _iso_datetime(value: str, offset: str | None, *, partial: bool = False) -> str | None:
    """ISO 8601 text of an ExifTool date; ``partial`` also accepts a date alone or a
    time without seconds (XMP, IPTC). ``offset`` applies when the value has no zone."""
    m = (_PARTIAL_DATETIME if partial else _DATETIME).match(value.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(year) > 0):
        return None
    if hh is None:
        return f"{year}-{month}-{day}"
    if int(hh) > 23 or int(mm) > 59 or int(ss or 0) > 60:
        return None
    text = f"{year}-{month}-{day}T{hh}:{mm}" + (f":{ss}{frac or ''}" if ss else "")
    zone = tz or offset
    if zone == "Z":
        return text + "Z"
    if zone and (om := _OFFSET.match(zone.strip())):
        return f"{text}{om.group(1)}{om.group(2)}:{om.group(3)}"
    return text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0] if value else None
        return _text(value)
    text = str(value).replace("\0", "").strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    # EXIF integers are at most 32 bits (LONG, SLONG); 1e30 written as a DOUBLE is nonsense
    # that would not fit the events' 64-bit fields either.
    return int(number) if number is not None and -(2**31) <= number < 2**32 else None


def _signed(value: float | None, ref: Any, negative: str) -> float | None:
    if value is None:
        return None
    if isinstance(ref, str) and ref[:1] and ref[:1] in negative:
        return -abs(value)
    return value
