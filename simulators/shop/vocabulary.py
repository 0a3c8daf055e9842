"""The words the shop's catalog is written in: categories with their nouns, materials and
brands, and the colours, styles and user groups every category shares (data only)."""

from __future__ import annotations

# Category name, product nouns, materials, brands. Colours and styles are shared.
CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "shirts",
        ("shirt", "oxford shirt", "flannel shirt", "polo shirt"),
        ("cotton", "linen", "flannel", "silk"),
        ("Nordvik", "Harlow", "Tessa", "Bramble"),
    ),
    (
        "dresses",
        ("dress", "maxi dress", "wrap dress", "slip dress"),
        ("cotton", "silk", "chiffon", "jersey"),
        ("Lumiere", "Odette", "Marisol", "Vero"),
    ),
    (
        "jeans",
        ("jeans", "skinny jeans", "straight-leg jeans", "denim shorts"),
        ("denim", "stretch denim", "raw denim", "organic denim"),
        ("Indigo Works", "Rivet", "Blue Hollow", "Selvage Co"),
    ),
    (
        "sneakers",
        ("sneakers", "running shoes", "trainers", "high-tops"),
        ("mesh", "suede", "canvas", "leather"),
        ("Stride", "Kinetic", "Apex Run", "Loop"),
    ),
    (
        "boots",
        ("boots", "chelsea boots", "hiking boots", "ankle boots"),
        ("leather", "suede", "nubuck", "rubber"),
        ("Timberline", "Crag", "Fenwick", "Moorland"),
    ),
    (
        "jackets",
        ("jacket", "parka", "bomber jacket", "rain jacket"),
        ("nylon", "wool", "down", "waxed cotton"),
        ("Northpeak", "Storm & Co", "Halden", "Arctica"),
    ),
    (
        "sweaters",
        ("sweater", "cardigan", "hoodie", "turtleneck"),
        ("wool", "cashmere", "merino", "fleece"),
        ("Woolhouse", "Kettle", "Fjord", "Loomis"),
    ),
    (
        "handbags",
        ("handbag", "tote bag", "crossbody bag", "clutch"),
        ("leather", "canvas", "vegan leather", "straw"),
        ("Camille", "Atelier V", "Rosalind", "Maison Ruth"),
    ),
    (
        "watches",
        ("watch", "chronograph", "smartwatch", "dive watch"),
        ("stainless steel", "titanium", "ceramic", "gold-tone steel"),
        ("Tempus", "Horologe", "Chronex", "Meridian"),
    ),
    (
        "sunglasses",
        ("sunglasses", "aviators", "wayfarers", "sports shades"),
        ("acetate", "metal", "polycarbonate", "bamboo"),
        ("Solara", "Glint", "Ray Ridge", "Shade Lab"),
    ),
    (
        "headphones",
        ("headphones", "earbuds", "noise-cancelling headphones", "gaming headset"),
        ("aluminium", "plastic", "memory foam", "carbon fibre"),
        ("Sonique", "Bassline", "Audora", "Echo Nine"),
    ),
    (
        "phone cases",
        ("phone case", "wallet case", "rugged case", "clear case"),
        ("silicone", "polycarbonate", "leather", "TPU"),
        ("Shellguard", "Casely", "Armorline", "Pocketry"),
    ),
    (
        "coffee makers",
        ("coffee maker", "espresso machine", "pour-over kettle", "french press"),
        ("stainless steel", "glass", "ceramic", "copper"),
        ("Brewster", "Crema", "Barista Bros", "Morning Ritual"),
    ),
    (
        "cookware",
        ("frying pan", "saucepan", "dutch oven", "wok"),
        ("cast iron", "stainless steel", "non-stick aluminium", "copper"),
        ("Hearth", "Le Fourneau", "Iron & Oak", "Chefline"),
    ),
    (
        "bedding",
        ("duvet cover", "sheet set", "pillowcase pair", "throw blanket"),
        ("cotton sateen", "linen", "bamboo", "percale"),
        ("Dreamweave", "Slumber & Co", "Nestle", "Quietnight"),
    ),
    (
        "lamps",
        ("table lamp", "floor lamp", "desk lamp", "pendant light"),
        ("brass", "ceramic", "rattan", "matte steel"),
        ("Lumen", "Glowhaus", "Candela", "Arclight"),
    ),
    (
        "skincare",
        ("moisturiser", "face serum", "cleanser", "sunscreen"),
        ("hyaluronic", "vitamin C", "aloe", "retinol"),
        ("Dermaleaf", "Pure Bloom", "Clarity Lab", "Velvet Skin"),
    ),
    (
        "fragrances",
        ("eau de parfum", "eau de toilette", "body mist", "cologne"),
        ("citrus", "woody", "floral", "musk"),
        ("Aurelle", "Noir Atelier", "Petalwood", "Santalia"),
    ),
    (
        "toys",
        ("building set", "plush toy", "puzzle", "remote-control car"),
        ("wooden", "plastic", "plush", "recycled plastic"),
        ("Playforge", "Tiny Tribe", "Brickwise", "Wonderbox"),
    ),
    (
        "yoga gear",
        ("yoga mat", "yoga block", "resistance band set", "yoga leggings"),
        ("natural rubber", "cork", "TPE", "recycled nylon"),
        ("Zenflow", "Asana Co", "Mindful Move", "Lotus Lane"),
    ),
)


COLOURS = ("black", "white", "navy", "grey", "red", "olive", "beige", "pink", "blue", "brown")


STYLES = ("classic", "minimalist", "vintage", "sporty", "premium", "eco-friendly", "bold", "cosy")


GENDERS = ("female", "male")


AGE_GROUPS = ("18-24", "25-34", "35-49", "50+")
