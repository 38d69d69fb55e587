"""A deterministic generator of one store's Stellar POS back-office tables.

Why a generator and not a fixture file: the tests, the demo and the benchmarks all need the same
kind of source data at very different sizes (a dozen rows to half a million products), and each of
the source system's known traps (several barcodes per product, group codes repeated across
departments, NULL prices, negative stock, dirty and non-ASCII text, ...) has to be switchable on
its own so a test can show that the pipeline handles exactly that trap. A seeded generator gives
all of that from a few knobs (`Traps`) and stays small enough to read.

The generator also produces the oracle: `StellarStore.expected` is what a correct pipeline
publishes for the store. It is built from the values the generator started from (the clean texts
before they were dirtied, the stock row it knows wins the de-duplication), not by re-running the
pipeline's own rules over the tables, so a bug in the pipeline cannot hide behind the same bug in
the oracle.

Only the standard library is used, and every random draw goes through one ``random.Random``
seeded with a string, so the same (warehouse, seed, products, traps) gives the same tables on any
machine and any ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import gc
import random
import tomllib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Literal

from fluxion_etl.stores import example_text, parse_stores

__all__ = [
    "CHAIN_LOCATIONS",
    "PROCURA_DEPARTMENT",
    "SCHEMA",
    "Column",
    "ExpectedRow",
    "Location",
    "StellarStore",
    "Table",
    "Traps",
    "generate_store",
]

PROCURA_DEPARTMENT = "000017"
"""Department code of PROCURA (the chain's own supplies): never published."""

# --------------------------------------------------------------------------------------------
# Schema: one description of the Stellar tables, rendered by each writer in its own dialect.
# --------------------------------------------------------------------------------------------

ColumnKind = Literal["int", "varchar", "decimal"]


@dataclass(frozen=True)
class Column:
    """One column of a Stellar table, described once so each writer renders its own DDL."""

    name: str
    kind: ColumnKind
    size: int = 0
    """VARCHAR length, or DECIMAL precision."""
    scale: int = 0
    """DECIMAL scale (digits after the point)."""

    @property
    def sql_type(self) -> str:
        """ANSI spelling of the type (``INTEGER``, ``VARCHAR(20)``, ``DECIMAL(18,3)``)."""
        if self.kind == "int":
            return "INTEGER"
        if self.kind == "varchar":
            return f"VARCHAR({self.size})"
        return f"DECIMAL({self.size},{self.scale})"


@dataclass(frozen=True)
class Table:
    """A Stellar table: columns in row order, primary key and the indexes the query relies on."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _int(name: str) -> Column:
    return Column(name, "int")


def _str(name: str, size: int) -> Column:
    return Column(name, "varchar", size)


def _dec(name: str, precision: int, scale: int) -> Column:
    return Column(name, "decimal", precision, scale)


SCHEMA: tuple[Table, ...] = (
    Table(
        "MA_DEPOPROD",
        (
            _int("id"),
            _str("c_coddeposito", 10),
            _str("c_codarticulo", 20),
            _dec("n_cantidad", 18, 3),
        ),
        primary_key=("id",),
        indexes=(("c_coddeposito",),),
    ),
    Table(
        "MA_PRODUCTOS",
        (
            _str("c_Codigo", 20),
            _str("c_Descri", 1200),
            _str("c_Departamento", 10),
            _str("c_Grupo", 10),
            _str("c_Subgrupo", 10),
            _str("c_Marca", 60),
            _str("Text2", 60),
            _dec("n_CostoAct", 18, 4),
            _dec("n_Precio1", 18, 4),
            _dec("n_Impuesto1", 9, 2),
            _str("c_Presenta", 60),
            _dec("n_Peso", 18, 3),
            _dec("n_Volumen", 18, 3),
            _int("n_TipoPeso"),
            _dec("n_CantiBul", 18, 3),
            _int("n_Activo"),
        ),
        primary_key=("c_Codigo",),
    ),
    Table(
        "MA_CODIGOS",
        (
            _str("c_CodNasa", 20),
            _str("c_Codigo", 30),
            _str("c_Descripcion", 30),
            _int("nu_Intercambio"),
        ),
        indexes=(("c_CodNasa",),),
    ),
    Table(
        "MA_DEPARTAMENTOS",
        (_str("C_CODIGO", 10), _str("C_DESCRIPCIO", 60)),
        primary_key=("C_CODIGO",),
    ),
    Table(
        "MA_GRUPOS",
        (_str("c_CODIGO", 10), _str("C_DESCRIPCIO", 60), _str("c_departamento", 10)),
        primary_key=("c_departamento", "c_CODIGO"),
    ),
    Table(
        "MA_SUBGRUPOS",
        (
            _str("c_CODIGO", 10),
            _str("C_DESCRIPCIO", 60),
            _str("c_in_departamento", 10),
            _str("c_in_grupo", 10),
        ),
        primary_key=("c_in_departamento", "c_in_grupo", "c_CODIGO"),
    ),
    Table(
        "MA_DEPOSITO",
        (_str("c_coddeposito", 10), _str("c_descripcion", 60)),
        primary_key=("c_coddeposito",),
    ),
)
"""The seven tables the inventory query reads, in load order."""

# --------------------------------------------------------------------------------------------
# The chain's locations (ids, names, warehouse codes), for fixtures, the demo and benchmarks.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A location of the chain as the operators name it: id, upper-case name, warehouse code."""

    id: str
    name: str
    warehouse: str


def _chain_locations() -> tuple[Location, ...]:
    """The locations of the packaged example stores file: one list of the chain, not two."""
    document = tomllib.loads(example_text())
    return tuple(Location(s.id, s.name, s.warehouse) for s in parse_stores(document))


CHAIN_LOCATIONS: tuple[Location, ...] = _chain_locations()
"""Realistic locations: two-digit store ids with gaps, 4 distribution centres, the warehouse
exceptions (``2001``, ``0001``, ``1710``, ``1801``) and names with ``Ñ`` and dots."""

# --------------------------------------------------------------------------------------------
# Knobs and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traps:
    """Which of the source system's traps to put in the data, and how often.

    Each float is the fraction of products the trap hits (0 disables it); the draws are
    independent, so a product can carry several traps. ``Traps.disabled()`` gives clean data.
    """

    multi_barcode: float = 0.10
    """Product has 2-3 qualifying barcodes: a naive join to MA_CODIGOS multiplies its rows."""
    non_barcode_codes: float = 0.10
    """Extra MA_CODIGOS rows that are not barcodes (not 'BARRA', or nu_Intercambio = 0); they sort
    before the real barcodes, so forgetting either filter picks the wrong code."""
    no_barcode: float = 0.03
    """Product without any qualifying barcode: excluded."""
    shared_group_codes: bool = True
    """Group and subgroup codes restart in every department (as in Stellar), so joining them on
    the code alone multiplies rows and mixes descriptions. False makes every code unique."""
    negative_stock: float = 0.04
    zero_stock: float = 0.05
    null_cost: float = 0.02
    null_price: float = 0.02
    null_description: float = 0.01
    """c_Descri NULL or blank/whitespace-only; at the same rate one of marca, presentación or
    cuadrante is NULL or blank. All of them publish as NULL."""
    long_description: float = 0.01
    """Description of 300-1000 characters."""
    dirty_text: float = 0.15
    """Leading/trailing spaces, doubled inner spaces, tabs and NFD-decomposed accents in the
    description (and in half of the cases the brand, presentation, shelf zone); catalog
    descriptions (department, group, subgroup) are dirtied at the same rate."""
    special_text: float = 0.20
    """Texts with '/', '%', '&', parentheses, 'Ñ' and accented letters ('1/2 KG', '50% GRASA',
    'P&G', 'CAFÉ', 'MAÑONGO', '(AZUL)'). When > 0 the catalog names carry their accents too;
    at 0 every text is plain ASCII."""
    lowercase_code: float = 0.02
    """Product code stored lower-case or with surrounding spaces (published upper-cased and
    trimmed). A quarter of these are "twins": a second product whose code differs from an
    existing one only by case/spaces, so both publish under one code and the stock row with the
    lowest MA_DEPOPROD.id wins."""
    inactive: float = 0.03
    """n_Activo = 0: excluded."""
    weighed: float = 0.03
    """n_TipoPeso <> 0 (sold by weight): excluded."""
    procura: float = 0.02
    """Product of department '000017' (PROCURA): excluded."""
    duplicate_stock_rows: float = 0.01
    """A second MA_DEPOPROD row for the product in this warehouse, with a higher id but stored
    physically before the first one, so "first row seen" is not the winner."""
    other_warehouses: int = 2
    """Number of other warehouses holding stock rows of the same products (never selected)."""
    not_stocked: float = 0.12
    """Product of the chain's catalog with no stock row in this warehouse (only in the others):
    not published. A query driven from MA_PRODUCTOS with an outer join to the stock would
    publish it with a NULL quantity. With the defaults about 78% of the products publish, so
    2,500-5,000 products give the real stores' 1,900-3,900 rows."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise ValueError(f"Traps.{f.name} is a fraction of products, got {value!r}")
        if self.other_warehouses < 0:
            raise ValueError(f"Traps.other_warehouses must be >= 0, got {self.other_warehouses}")

    @classmethod
    def disabled(cls) -> Traps:
        """No trap at all: every product is published exactly as stored."""
        off: dict[str, object] = {
            f.name: (False if f.default is True else 0 if isinstance(f.default, int) else 0.0)
            for f in fields(cls)
        }
        return cls(**off)  # type: ignore[arg-type]


DEFAULT_TRAPS = Traps()
"""The default knobs: every trap on, at rates like the real stores'."""


@dataclass(frozen=True, slots=True)
class ExpectedRow:
    """What a correct pipeline publishes for one product of the store."""

    codigo_producto: str
    """Upper-cased, trimmed."""
    codigo_barras: str
    """The smallest (string order) qualifying BARRA barcode; barcodes are digits only, so the
    order is the same under any collation."""
    descripcion_producto: str | None
    """Trimmed, whitespace runs collapsed to one space, Unicode NFC; blank becomes None."""
    categoria: str | None
    grupo: str | None
    subgrupo: str | None
    marca: str | None
    presentacion: str | None
    cuadrante: str | None
    cantidad_actual: Decimal
    """Scale 3, may be negative: the quantity of the winning (lowest id) stock row."""
    costo_unitario_actual: Decimal | None
    """Scale 4."""
    precio_venta_actual: Decimal | None
    """Scale 4."""
    impuesto_porcentaje: Decimal | None
    """Scale 2 (16.00, 8.00, 0.00)."""
    peso_producto: Decimal | None
    """Scale 3."""
    volumen_producto: Decimal | None
    """Scale 3."""
    cantidad_bultos: Decimal | None
    """Scale 3 (units per case)."""


@dataclass(frozen=True)
class StellarStore:
    """One store's generated Stellar tables plus the oracle and the counts tests assert on."""

    warehouse: str
    """This store's warehouse code, e.g. '0202'."""
    tables: dict[str, tuple[list[str], list[tuple[object, ...]]]]
    """Table name -> (column names, rows), in `SCHEMA` order."""
    expected: dict[str, ExpectedRow]
    """codigo_producto -> the row a correct pipeline publishes."""
    seed: int
    traps: Traps
    other_warehouses: tuple[str, ...]
    """Warehouse codes whose stock rows are in MA_DEPOPROD but must not be selected."""
    products: int
    """Rows of MA_PRODUCTOS."""
    unstocked_products: int
    """Products without a stock row in this warehouse (`Traps.not_stocked`)."""
    excluded_products: int
    """Products stocked here that the business rules drop (inactive, weighed, PROCURA or
    without barcode). ``products - unstocked_products - excluded_products`` products are
    selected (some of them then lose the de-duplication to a twin)."""
    source_rows_selected: int
    """Rows a correct query returns before de-duplication (one per stock row of this warehouse
    of a selected product; barcodes and groups must not multiply them)."""
    expected_duplicates_dropped: int
    """Selected rows that lose the de-duplication: ``source_rows_selected - len(expected)``."""
    expected_negative: int
    """Published rows with cantidad_actual < 0."""
    expected_zero: int
    """Published rows with cantidad_actual = 0."""
    expected_null_cost: int
    expected_null_price: int
    expected_null_description: int

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows per table, as a reader of the source should find them."""
        return {name: len(rows) for name, (_, rows) in self.tables.items()}


# --------------------------------------------------------------------------------------------
# Vocabulary. Written with their accents; the plain (ASCII) forms are derived.
# --------------------------------------------------------------------------------------------

# department code, description, ((group, ((subgroup, (product nouns, ...)), ...)), ...)
_Sub = tuple[str, tuple[str, ...]]
_Group = tuple[str, tuple[_Sub, ...]]
_CATALOG: tuple[tuple[str, str, tuple[_Group, ...]], ...] = (
    (
        "000001",
        "VÍVERES",
        (
            (
                "ARROZ Y GRANOS",
                (
                    ("ARROZ", ("ARROZ BLANCO", "ARROZ PARBOILED", "ARROZ INTEGRAL")),
                    ("CARAOTAS", ("CARAOTAS NEGRAS", "CARAOTAS ROJAS", "FRIJOLES")),
                    ("LENTEJAS", ("LENTEJAS", "ARVEJAS", "GARBANZOS")),
                ),
            ),
            (
                "HARINAS",
                (
                    ("HARINA DE MAÍZ", ("HARINA DE MAÍZ BLANCO", "HARINA DE MAÍZ AMARILLO")),
                    ("HARINA DE TRIGO", ("HARINA DE TRIGO TODO USO", "HARINA LEUDANTE")),
                ),
            ),
            (
                "PASTAS",
                (
                    ("PASTA LARGA", ("ESPAGUETI", "FIDEOS", "VERMICELLI")),
                    ("PASTA CORTA", ("PLUMAS", "CODITOS", "TORNILLOS")),
                ),
            ),
            (
                "ACEITES Y GRASAS",
                (
                    ("ACEITE VEGETAL", ("ACEITE DE SOYA", "ACEITE DE GIRASOL", "ACEITE DE MAÍZ")),
                    ("MARGARINA", ("MARGARINA", "MANTEQUILLA")),
                ),
            ),
            (
                "CAFÉ Y TÉ",
                (
                    ("CAFÉ", ("CAFÉ MOLIDO", "CAFÉ EN GRANO", "CAFÉ INSTANTÁNEO")),
                    ("TÉ E INFUSIONES", ("TÉ NEGRO", "MANZANILLA", "TÉ VERDE")),
                ),
            ),
        ),
    ),
    (
        "000002",
        "BEBIDAS",
        (
            (
                "REFRESCOS",
                (
                    ("COLAS", ("REFRESCO DE COLA", "REFRESCO COLA NEGRA")),
                    ("SABORES", ("REFRESCO DE NARANJA", "REFRESCO DE LIMÓN", "REFRESCO DE PIÑA")),
                ),
            ),
            (
                "JUGOS Y NÉCTARES",
                (
                    ("NÉCTARES", ("NÉCTAR DE DURAZNO", "NÉCTAR DE PERA", "NÉCTAR DE MANGO")),
                    ("JUGOS", ("JUGO DE NARANJA", "JUGO DE MANZANA", "JUGO DE PARCHITA")),
                ),
            ),
            ("AGUAS", (("AGUA MINERAL", ("AGUA MINERAL", "AGUA SABORIZADA")),)),
        ),
    ),
    (
        "000003",
        "LIMPIEZA",
        (
            (
                "DETERGENTES",
                (
                    ("DETERGENTE EN POLVO", ("DETERGENTE EN POLVO", "JABÓN EN POLVO")),
                    ("DETERGENTE LÍQUIDO", ("DETERGENTE LÍQUIDO", "SUAVIZANTE")),
                ),
            ),
            (
                "DESINFECTANTES",
                (
                    ("CLORO", ("CLORO", "LEJÍA")),
                    ("DESINFECTANTE", ("DESINFECTANTE LAVANDA", "LIMPIADOR MULTIUSO")),
                ),
            ),
            (
                "PAPEL",
                (
                    ("PAPEL HIGIÉNICO", ("PAPEL HIGIÉNICO DOBLE HOJA", "PAPEL HIGIÉNICO")),
                    ("SERVILLETAS", ("SERVILLETAS", "PAPEL ABSORBENTE")),
                ),
            ),
        ),
    ),
    (
        "000004",
        "CUIDADO PERSONAL",
        (
            (
                "HIGIENE",
                (
                    ("JABÓN DE TOCADOR", ("JABÓN DE TOCADOR", "JABÓN LÍQUIDO")),
                    ("CHAMPÚ", ("CHAMPÚ", "ACONDICIONADOR")),
                    ("CREMA DENTAL", ("CREMA DENTAL", "ENJUAGUE BUCAL", "CEPILLO DENTAL")),
                ),
            ),
            (
                "BEBÉS",
                (
                    ("PAÑALES", ("PAÑALES ETAPA 3", "PAÑALES ETAPA 4", "PAÑALES ETAPA 5")),
                    ("TOALLITAS", ("TOALLITAS HÚMEDAS",)),
                ),
            ),
        ),
    ),
    (
        "000005",
        "LÁCTEOS",
        (
            (
                "LECHES",
                (
                    ("LECHE EN POLVO", ("LECHE EN POLVO COMPLETA", "LECHE EN POLVO DESCREMADA")),
                    ("LECHE LÍQUIDA", ("LECHE UHT", "LECHE DESCREMADA", "BEBIDA LÁCTEA")),
                ),
            ),
            (
                "QUESOS Y YOGURES",
                (
                    ("QUESOS", ("QUESO BLANCO", "QUESO AMARILLO", "QUESO CREMA")),
                    ("YOGURES", ("YOGUR NATURAL", "YOGUR DE FRESA", "YOGUR GRIEGO")),
                ),
            ),
        ),
    ),
    (
        "000006",
        "CHUCHERÍAS",
        (
            (
                "GALLETAS",
                (
                    ("GALLETAS DULCES", ("GALLETAS DE VAINILLA", "GALLETAS DE CHOCOLATE")),
                    ("GALLETAS SALADAS", ("GALLETAS DE SODA", "GALLETAS INTEGRALES")),
                ),
            ),
            (
                "SNACKS",
                (
                    ("PAPAS FRITAS", ("PAPAS FRITAS", "TOSTONES DE PLÁTANO")),
                    ("CHOCOLATES", ("CHOCOLATE CON LECHE", "CHOCOLATE OSCURO", "BOMBONES")),
                ),
            ),
        ),
    ),
    (
        "000008",
        "ENLATADOS",
        (
            (
                "PESCADOS",
                (
                    ("ATÚN", ("ATÚN EN ACEITE", "ATÚN EN AGUA")),
                    ("SARDINAS", ("SARDINAS EN TOMATE", "SARDINAS EN ACEITE")),
                ),
            ),
            ("VEGETALES", (("MAÍZ Y GUISANTES", ("MAÍZ DULCE", "GUISANTES", "VAINITAS")),)),
        ),
    ),
    (
        "CB",
        "CANASTA BASICA",
        (
            (
                "ALIMENTOS REGULADOS",
                (
                    ("ARROZ", ("ARROZ BLANCO TIPO I",)),
                    ("HARINA PRECOCIDA", ("HARINA PRECOCIDA DE MAÍZ",)),
                    ("AZÚCAR", ("AZÚCAR REFINADA", "AZÚCAR MORENA")),
                ),
            ),
            ("ASEO REGULADO", (("JABÓN", ("JABÓN DE LAVAR", "JABÓN EN BARRA")),)),
        ),
    ),
    (
        PROCURA_DEPARTMENT,
        "PROCURA",
        (
            (
                "MATERIALES",
                (
                    ("PAPELERÍA", ("RESMA PAPEL CARTA", "BOLÍGRAFO AZUL", "CINTA ADHESIVA")),
                    ("EMPAQUES", ("BOLSA PLÁSTICA", "ROLLO DE ETIQUETAS", "ROLLO PAPEL TÉRMICO")),
                ),
            ),
        ),
    ),
)

_BRANDS = (
    "POLAR",
    "MARY",
    "PAN",
    "PRIMOR",
    "MAVESA",
    "NESTLE",
    "CAPRI",
    "DIANA",
    "ALPINA",
    "COLGATE",
    "PROTEX",
    "LAS LLAVES",
    "LA PASTORA",
    "SANTONI",
    "RONCO",
    "VATEL",
    "FAVORITA",
    "GOLDEN",
    "MINALBA",
    "SAVOY",
    "PLUMROSE",
    "TIO RICO",
    "LA CAMPINA",
    "ORIENTAL",
)
_SPECIAL_BRANDS = (
    "P&G",
    "NESTLÉ",
    "DOÑA EMILIA",
    "LA ESPAÑOLA",
    "MAÑONGO",
    "JOHNSON & JOHNSON",
    "LA CAMPIÑA",
    "AVÍCOLA LA ROSA",
    "PEPSI-COLA (PCV)",
    "TÍO RICO",
)
_WEIGHTS = ("1 KG", "500 GR", "900 GR", "250 GR", "200 GR", "400 GR", "100 GR", "2 KG")
_VOLUMES = ("1 LT", "2 LT", "355 ML", "1,5 LT", "250 ML", "750 ML", "500 ML", "X 6 UND")
_UNITS = ("X 4 UND", "X 12 UND", "X 6 UND", "X 30 UND", "90 GR", "180 ML", "400 ML", "1 UND")
_SIZES_BY_DEPARTMENT = {"000002": _VOLUMES, "000003": _VOLUMES + _WEIGHTS, "000004": _UNITS}
"""Pack sizes that make sense for the department (default: weights)."""
_VARIANTS = ("ORIGINAL", "CLASICO", "LIGHT", "FAMILIAR", "TRADICIONAL", "PREMIUM", "ECONOMICO")
_SPECIAL_TOKENS = (
    "1/2 KG",
    "3/4 LT",
    "1/4 KG",
    "50% GRASA",
    "100% NATURAL",
    "0% AZÚCAR",
    "(AZUL)",
    "(ROJO)",
    "P&G",
    "& MÁS",
    "AÑO NUEVO",
    "CAFÉ",
    "JABÓN",
    "LIMÓN",
    "PIÑA",
    "NIÑOS",
    "MAÑONGO",
    "ALGODÓN",
    "EDICIÓN ESPECIAL",
    "2X1 + 20% GRATIS",
)
_PRESENTATIONS = (
    "UND",
    "PAQUETE",
    "BOLSA",
    "CAJA X 12",
    "CAJA X 24",
    "BOTELLA",
    "LATA",
    "FRASCO",
    "SOBRE",
    "DISPLAY X 6",
    "BULTO X 20",
)
_SPECIAL_PRESENTATIONS = (
    "BOLSA 1/2 KG",
    "CAJA (12 UND)",
    "FRASCO 3/4 LT",
    "PAQUETE 2X1 & REGALO",
    "BOTELLA 1,5 LT (PET)",
    "EMPAQUE AHORRO 20%",
    "PAÑAL X 30",
    "BANDEJA ÚNICA",
)
_SHELVES = tuple(f"PASILLO {n}" for n in range(1, 15)) + (
    "CABECERA 1",
    "CABECERA 2",
    "CABECERA 3",
    "NEVERA 1",
    "NEVERA 2",
    "CAJA RAPIDA",
    "DEPOSITO",
)
_SPECIAL_SHELVES = (
    "PASILLO 3 (FONDO)",
    "CABECERA NORTE/SUR",
    "ISLA PROMOCIÓN",
    "ZONA BEBÉS",
    "NEVERA & CONGELADOS",
    "ALMACÉN",
    "PASILLO 5 - 50% OFERTA",
    "PEQUEÑOS PRECIOS",
)
_FILLER = (
    "INGREDIENTES",
    "HARINA",
    "DE",
    "TRIGO",
    "AZUCAR",
    "SAL",
    "ACEITE",
    "VEGETAL",
    "CONSERVAR",
    "EN",
    "LUGAR",
    "FRESCO",
    "Y",
    "SECO",
    "CONTIENE",
    "GLUTEN",
    "PRODUCTO",
    "ELABORADO",
    "POR",
    "PARA",
    "LOTE",
    "REGISTRO",
    "SANITARIO",
    "CONSUMIR",
    "ANTES",
    "DEL",
    "VENCIMIENTO",
    "INDICADO",
    "EN EL EMPAQUE",
    "NACIONAL",
    "PUEDE",
    "CONTENER",
    "TRAZAS",
    "LECHE",
    "SOYA",
    "MANI",
    "HECHO",
    "VENEZUELA",
    "DISTRIBUIDO",
    "C.A.",
    "RIF J-00000000-0",
    "PESO NETO",
    "MANTENER",
    "REFRIGERADO",
)
_SPECIAL_FILLER = _FILLER + (
    "AZÚCAR",
    "MANÍ",
    "PROTEÍNA",
    "AÑO",
    "1/2",
    "30%",
    "&",
    "(VER EMPAQUE)",
    "ELABORACIÓN",
    "NIÑOS",
    "CAFEÍNA",
    "SÉSAMO",
)
_BLANKS: tuple[str | None, ...] = (None, None, "", " ", "   ", "\t", " \t ")
_TAXES = (Decimal("16.00"),) * 7 + (Decimal("8.00"), Decimal("0.00"), Decimal("0.00"))
_EXEMPT = Decimal("0.00")
_CASE_SIZES = tuple(Decimal(n).quantize(Decimal("0.001")) for n in (1, 1, 6, 12, 12, 24, 24, 48))
_CODE_PREFIXES = ("A", "AB", "P", "LC", "X", "VE", "PL")
_NON_BARCODE_KINDS = ("REFERENCIA", "PROVEEDOR", "CODIGO INTERNO", "ALTERNO")
_TWIN_SHARE = 0.25

_Draw = Callable[[], float]
"""``random.Random.random`` of the generator: the only source of randomness."""


def _plain(text: str) -> str:
    """The text without accents or tildes, as a store whose catalog was typed in ASCII has it."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _dirty(text: str, r: _Draw, limit: int) -> str:
    """Dirty `text` the way hand-typed back-office data is dirty, keeping it within `limit`.

    Every branch adds whitespace, so the result always differs from `text`; cleaning it (trim,
    collapse whitespace runs, NFC) gives `text` back.
    """
    if not text.isascii() and r() < 0.6:
        nfd = unicodedata.normalize("NFD", text)
        if len(nfd) + 3 <= limit:
            text = nfd
    kind = int(r() * 4)
    if kind == 0:
        out = " " + text + "  "
    elif kind == 1:
        out = text + " \t"
    elif kind == 2:
        space = text.find(" ")
        out = text[:space] + "  " + text[space + 1 :] if space >= 0 else "  " + text
    else:
        out = "\t" + text.replace(" ", " \t", 1) + " "
    return out if len(out) <= limit else text + " "


def _pick(seq: Sequence[str], r: _Draw) -> str:
    return seq[int(r() * len(seq))]


def _long_text(start: str, filler: Sequence[str], r: _Draw) -> str:
    """A 300-1000 character description: the short one followed by label text."""
    target = 300 + int(r() * 701)
    words = [start]
    length = len(start)
    while length < target:
        word = filler[int(r() * len(filler))]
        words.append(word)
        length += 1 + len(word)
    if length > 1000:
        length -= 1 + len(words.pop())
    return " ".join(words)


# EAN-13 check digits of "759" + 9 digits, from the weighted digit sums of 3-digit chunks:
# positions 3-5 and 9-11 weigh (3, 1, 3), positions 6-8 weigh (1, 3, 1); "759" sums to 31.
_CHUNK_313 = tuple(3 * (n // 100) + (n // 10) % 10 + 3 * (n % 10) for n in range(1000))
_CHUNK_131 = tuple(n // 100 + 3 * ((n // 10) % 10) + n % 10 for n in range(1000))


def _ean13_759(serial: int) -> str:
    """The Venezuelan (prefix 759) EAN-13 barcode number `serial`, with its check digit."""
    total = 31 + _CHUNK_313[serial // 1_000_000 % 1000] + _CHUNK_131[serial // 1000 % 1000]
    total += _CHUNK_313[serial % 1000]
    return f"759{serial:09d}{(10 - total % 10) % 10}"


@dataclass(frozen=True)
class _Leaf:
    department: str
    group: str
    subgroup: str
    categoria: str
    grupo: str
    subgrupo: str
    nouns: tuple[str, ...]
    plain_nouns: tuple[str, ...]
    sizes: tuple[str, ...]


def _catalog(
    r: _Draw, traps: Traps
) -> tuple[list[_Leaf], list[_Leaf], dict[str, list[tuple[object, ...]]]]:
    """Departments, groups and subgroups: (leaves for normal products, PROCURA leaves, rows)."""
    special = traps.special_text > 0
    deps: list[tuple[object, ...]] = []
    groups: list[tuple[object, ...]] = []
    subs: list[tuple[object, ...]] = []
    leaves: list[_Leaf] = []
    procura: list[_Leaf] = []

    def stored(clean: str) -> str:
        return _dirty(clean, r, 60) if r() < traps.dirty_text else clean

    for d_index, (dep_code, dep_name, dep_groups) in enumerate(_CATALOG, start=1):
        dep_clean = dep_name if special else _plain(dep_name)
        deps.append((dep_code, stored(dep_clean)))
        for g_index, (group_name, group_subs) in enumerate(dep_groups, start=1):
            group_code = (
                f"{g_index:02d}" if traps.shared_group_codes else f"{d_index:02d}{g_index:02d}"
            )
            group_clean = group_name if special else _plain(group_name)
            groups.append((group_code, stored(group_clean), dep_code))
            for s_index, (sub_name, nouns) in enumerate(group_subs, start=1):
                sub_code = f"{group_code if not traps.shared_group_codes else ''}{s_index:02d}"
                sub_clean = sub_name if special else _plain(sub_name)
                subs.append((sub_code, stored(sub_clean), dep_code, group_code))
                leaf = _Leaf(
                    dep_code,
                    group_code,
                    sub_code,
                    dep_clean,
                    group_clean,
                    sub_clean,
                    nouns,
                    tuple(_plain(n) for n in nouns),
                    _SIZES_BY_DEPARTMENT.get(dep_code, _WEIGHTS),
                )
                (procura if dep_code == PROCURA_DEPARTMENT else leaves).append(leaf)
    tables = {"MA_DEPARTAMENTOS": deps, "MA_GRUPOS": groups, "MA_SUBGRUPOS": subs}
    return leaves, procura, tables


def _other_warehouses(warehouse: str, count: int) -> tuple[str, ...]:
    """The first `count` chain warehouses other than this one, then made-up ones if needed."""
    others = [loc.warehouse for loc in CHAIN_LOCATIONS if loc.warehouse != warehouse][:count]
    n = 0
    while len(others) < count:
        code = f"9{n:03d}"
        n += 1
        if code != warehouse:
            others.append(code)
    return tuple(others)


def _deposit_name(code: str) -> str:
    for loc in CHAIN_LOCATIONS:
        if loc.warehouse == code:
            return f"DEPOSITO {loc.name}"
    return f"DEPOSITO {code}"


def generate_store(
    warehouse: str, products: int, *, seed: int = 0, traps: Traps = DEFAULT_TRAPS
) -> StellarStore:
    """Generate one store's Stellar tables with `products` products and the expected output.

    Deterministic: the same (warehouse, products, seed, traps) gives identical tables and rows.
    The warehouse code is part of the seed, so two stores with the same seed still differ.
    With the default traps about 78% of the products are published (2,500 products give about
    1,950 rows, 5,000 about 3,900, like the real stores).

    Cost: about 12 µs and 1.4 KB per product (500,000 products: ~6 s, ~700 MB). The cyclic
    garbage collector is paused meanwhile: the millions of tuples made here hold no cycles,
    and letting it rescan them as they pile up costs another 20%.
    """
    if products < 0:
        raise ValueError(f"products must be >= 0, got {products}")
    if not warehouse or len(warehouse) > 10:
        raise ValueError(f"warehouse must be a code of 1-10 characters, got {warehouse!r}")
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _generate(warehouse, products, seed, traps)
    finally:
        if collecting:
            gc.enable()


def _generate(warehouse: str, products: int, seed: int, traps: Traps) -> StellarStore:
    rng = random.Random(f"fluxion-stellar/{warehouse}/{seed}")
    r = rng.random
    t = traps
    leaves, procura_leaves, catalog_tables = _catalog(r, t)

    # Decimal quantities are shared between rows: they are few distinct values.
    qty_cache = {q: Decimal(q * 1000).scaleb(-3) for q in range(-40, 501)}
    weights = [Decimal(50 + n).scaleb(-3) for n in range(5000)]  # 0.050 .. 5.049 kg
    volumes = [Decimal(100 + n).scaleb(-3) for n in range(3000)]  # 0.100 .. 3.099 l
    n_brands, n_variants = len(_BRANDS), len(_VARIANTS)
    n_presentations, n_shelves = len(_PRESENTATIONS), len(_SHELVES)
    p_neg, p_zero = t.negative_stock, t.negative_stock + t.zero_stock

    def quantity() -> Decimal:
        u = r()
        if u < p_neg:
            return qty_cache[-1 - int(r() * 40)]
        if u < p_zero:
            return qty_cache[0]
        return qty_cache[1 + int(r() * 500)]

    product_rows: list[tuple[object, ...]] = []
    code_rows: list[tuple[object, ...]] = []
    stored_codes: list[str] = []
    canon_codes: list[str] = []
    this_qty: list[Decimal | None] = []
    dup_qty: list[Decimal | None] = []
    candidates: list[ExpectedRow | None] = []
    twin_variants: dict[str, set[str]] = {}
    ean_serial = int(r() * 10_000_000)
    upc_serial = int(r() * 10_000_000)
    retired_serial = int(r() * 10_000_000)
    excluded = unstocked = 0

    for i in range(products):
        # -- product code (canonical = what is published; stored = what the tables hold)
        canon = f"{_pick(_CODE_PREFIXES, r)}{i:06d}" if r() < 0.35 else str(100000 + i)
        stored = canon
        if r() < t.lowercase_code:
            twin = False
            if i and r() < _TWIN_SHARE:
                j = int(r() * i)
                target = canon_codes[j]
                used = twin_variants.get(target) or {stored_codes[j]}
                lower = target.lower()
                for variant in (target, " " + target, lower, " " + lower, "  " + target):
                    if variant not in used:
                        canon, stored = target, variant
                        used.add(variant)
                        twin_variants[target] = used
                        twin = True
                        break
            if not twin:  # a lower-case or space-padded copy of its own code
                if canon.isdigit():
                    stored = (" " + canon, canon + "  ", " " + canon + " ")[int(r() * 3)]
                else:
                    stored = (canon.lower(), " " + canon.lower(), canon.lower() + " ")[int(r() * 3)]
        stored_codes.append(stored)
        canon_codes.append(canon)

        # -- classification and texts
        is_procura = r() < t.procura
        leaf = (
            procura_leaves[int(r() * len(procura_leaves))]
            if is_procura
            else leaves[int(r() * len(leaves))]
        )
        special = r() < t.special_text
        if special:
            brand = _pick(_SPECIAL_BRANDS, r) if r() < 0.4 else _pick(_BRANDS, r)
            size = _pick(leaf.sizes, r)
            text = f"{_pick(leaf.nouns, r)} {brand} {_pick(_SPECIAL_TOKENS, r)} {size}"
            presenta_text = (
                _pick(_SPECIAL_PRESENTATIONS, r) if r() < 0.5 else _pick(_PRESENTATIONS, r)
            )
            shelf_text = _pick(_SPECIAL_SHELVES, r) if r() < 0.5 else _pick(_SHELVES, r)
        else:
            # the hot path: indexing inline instead of calling _pick
            brand = _BRANDS[int(r() * n_brands)]
            nouns = leaf.plain_nouns
            noun = nouns[int(r() * len(nouns))]
            sizes = leaf.sizes
            size = sizes[int(r() * len(sizes))]
            if r() < 0.4:
                text = f"{noun} {brand} {_VARIANTS[int(r() * n_variants)]} {size}"
            else:
                text = f"{noun} {brand} {size}"
            presenta_text = _PRESENTATIONS[int(r() * n_presentations)]
            shelf_text = _SHELVES[int(r() * n_shelves)]
        if r() < t.long_description:
            text = _long_text(text, _SPECIAL_FILLER if special else _FILLER, r)
        # clean values (published) and stored values (what the back office holds)
        desc: str | None = text
        marca: str | None = brand
        presenta: str | None = presenta_text
        shelf: str | None = shelf_text
        desc_db, marca_db, presenta_db, shelf_db = desc, marca, presenta, shelf
        if r() < t.dirty_text:
            desc_db = _dirty(text, r, 1200)
            if r() < 0.5:
                marca_db = _dirty(brand, r, 60)
            if r() < 0.5:
                presenta_db = _dirty(presenta_text, r, 60)
            if r() < 0.5:
                shelf_db = _dirty(shelf_text, r, 60)
        if r() < t.null_description:
            desc = None
            desc_db = _BLANKS[int(r() * len(_BLANKS))]
        if r() < t.null_description:
            blank = _BLANKS[int(r() * len(_BLANKS))]
            which = int(r() * 3)
            if which == 0:
                marca, marca_db = None, blank
            elif which == 1:
                presenta, presenta_db = None, blank
            else:
                shelf, shelf_db = None, blank

        # -- numbers
        cost_units = 2500 + int(r() * 2_497_500)  # 0.25 .. 250.00, in 1/10000
        u = r()
        if u < 0.55:
            cost_units = max(100, (cost_units + 50) // 100 * 100)  # 2 decimals
        elif u < 0.75:
            cost_units = max(10, (cost_units + 5) // 10 * 10)  # 3 decimals
        margin = 8500 + int(r() * 1400) if r() < 0.03 else 11000 + int(r() * 3500)
        price_units = max(100, (cost_units * margin // 10000 + 50) // 100 * 100)
        cost: Decimal | None = Decimal(cost_units).scaleb(-4)
        price: Decimal | None = Decimal(price_units).scaleb(-4)
        if r() < t.null_cost:
            cost = None
        if r() < t.null_price:
            price = None
        tax = _EXEMPT if leaf.department == "CB" else _TAXES[int(r() * len(_TAXES))]
        weight = weights[int(r() * 5000)]
        volume = qty_cache[0] if r() < 0.6 else volumes[int(r() * 3000)]
        case_size = _CASE_SIZES[int(r() * len(_CASE_SIZES))]
        active = 0 if r() < t.inactive else 1
        weighed = (1 if r() < 0.7 else 2) if r() < t.weighed else 0

        product_rows.append(
            (
                stored,
                desc_db,
                leaf.department,
                leaf.group,
                leaf.subgroup,
                marca_db,
                shelf_db,
                cost,
                price,
                tax,
                presenta_db,
                weight,
                volume,
                weighed,
                case_size,
                active,
            )
        )

        # -- alternate codes: non-barcodes first (they sort first too), then the barcodes
        if r() < t.non_barcode_codes:
            kind = int(r() * 3)
            if kind == 0:  # a retired barcode: BARRA, but no longer exchangeable
                retired_serial += 1 + int(r() * 50)
                code_rows.append((stored, f"00{retired_serial:011d}", "BARRA", 0))
            elif kind == 1:  # an exchangeable code that is not a barcode
                code_rows.append((stored, f"000{i:07d}", _pick(_NON_BARCODE_KINDS, r), 1))
            else:
                code_rows.append((stored, f"PRV{i:07d}", "PROVEEDOR", 0))
        barcodes: list[str] = []
        if r() >= t.no_barcode:
            count = 1 + (1 + int(r() * 2) if r() < t.multi_barcode else 0)
            for k in range(count):
                if k == 0 or r() < 0.5:
                    ean_serial += 1 + int(r() * 90)
                    barcodes.append(_ean13_759(ean_serial))
                else:
                    upc_serial += 1 + int(r() * 90)
                    barcodes.append(f"07{upc_serial:010d}")
            for barcode in barcodes:
                code_rows.append((stored, barcode, "BARRA", 1))

        # -- stock of this warehouse (other warehouses come with the ids, below)
        if r() < t.not_stocked:
            this_qty.append(None)
            dup_qty.append(None)
            candidates.append(None)
            unstocked += 1
            continue
        q = quantity()
        this_qty.append(q)
        if r() < t.duplicate_stock_rows:
            dq = quantity()
            dup_qty.append(dq if dq != q else qty_cache[1 + int(r() * 500)])
        else:
            dup_qty.append(None)

        if active == 1 and weighed == 0 and barcodes and not is_procura:
            candidates.append(
                ExpectedRow(
                    canon,
                    min(barcodes),
                    desc,
                    leaf.categoria,
                    leaf.grupo,
                    leaf.subgrupo,
                    marca,
                    presenta,
                    shelf,
                    q,
                    cost,
                    price,
                    tax,
                    weight,
                    volume,
                    case_size,
                )
            )
        else:
            candidates.append(None)
            excluded += 1

    # -- MA_DEPOPROD: ids follow a shuffled product order, so which of two "twin" products wins
    # is not simply the first one generated; each product's duplicate row gets an id above all
    # others but is stored just before its original, so table order is not id order.
    others = _other_warehouses(warehouse, t.other_warehouses)
    warehouses = sorted((warehouse, *others))
    order = list(range(products))
    rng.shuffle(order)
    stock_rows: list[tuple[object, ...]] = []
    this_id = [0] * products
    next_id = 1
    dup_id = products * len(warehouses) + 1
    for i in order:
        code = stored_codes[i]
        second = dup_qty[i]
        if second is not None:
            stock_rows.append((dup_id, warehouse, code, second))
            dup_id += 1
        for w in warehouses:
            if w != warehouse:
                stock_rows.append((next_id, w, code, quantity()))
            else:
                here = this_qty[i]
                if here is None:
                    continue
                this_id[i] = next_id
                stock_rows.append((next_id, w, code, here))
            next_id += 1

    # -- the oracle: one row per published code, the lowest stock row id wins
    expected: dict[str, ExpectedRow] = {}
    winner_id: dict[str, int] = {}
    selected_rows = 0
    for i, row in enumerate(candidates):
        if row is None:
            continue
        selected_rows += 1 if dup_qty[i] is None else 2
        canon = row.codigo_producto
        if canon in twin_variants:
            best = winner_id.get(canon)
            if best is not None and best < this_id[i]:
                continue
            winner_id[canon] = this_id[i]
        expected[canon] = row

    deposit_rows: list[tuple[object, ...]] = [(w, _deposit_name(w)) for w in warehouses]
    rows_by_table: dict[str, list[tuple[object, ...]]] = {
        "MA_DEPOPROD": stock_rows,
        "MA_PRODUCTOS": product_rows,
        "MA_CODIGOS": code_rows,
        **catalog_tables,
        "MA_DEPOSITO": deposit_rows,
    }
    values = expected.values()
    return StellarStore(
        warehouse=warehouse,
        tables={t.name: (t.column_names, rows_by_table[t.name]) for t in SCHEMA},
        expected=expected,
        seed=seed,
        traps=traps,
        other_warehouses=others,
        products=products,
        unstocked_products=unstocked,
        excluded_products=excluded,
        source_rows_selected=selected_rows,
        expected_duplicates_dropped=selected_rows - len(expected),
        expected_negative=sum(1 for e in values if e.cantidad_actual < 0),
        expected_zero=sum(1 for e in values if e.cantidad_actual == 0),
        expected_null_cost=sum(1 for e in values if e.costo_unitario_actual is None),
        expected_null_price=sum(1 for e in values if e.precio_venta_actual is None),
        expected_null_description=sum(1 for e in values if e.descripcion_producto is None),
    )
