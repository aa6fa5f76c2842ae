"""The small closed vocabulary of the built-in synthetic data sets (English and Chinese).

Kept tiny on purpose (a few dozen attribute words) so that a tiny model trained
from scratch in minutes can learn the rule "a relevant document repeats every
attribute the query asks for" from token overlap alone.
"""

from __future__ import annotations

# Attribute words, parallel across languages (index i means the same thing in both).
ATTRIBUTES = {
    "en": {
        "colour": ["red", "blue", "green", "black", "white", "yellow"],
        "material": ["wooden", "metal", "plastic", "bamboo", "stone"],
        "object": ["chair", "table", "lamp", "shelf", "bench", "cabinet", "stool", "desk"],
        "use": ["outdoor", "kitchen", "office", "bedroom", "garden"],
    },
    "zh": {
        "colour": ["红色", "蓝色", "绿色", "黑色", "白色", "黄色"],
        "material": ["木制", "金属", "塑料", "竹制", "石制"],
        "object": ["椅子", "桌子", "台灯", "书架", "长凳", "柜子", "凳子", "书桌"],
        "use": ["户外", "厨房", "办公室", "卧室", "花园"],
    },
}
SLOTS = ("colour", "material", "object", "use")

# The attributes always come in the same order and the "{colour} {material} {object}" phrase is
# always contiguous, in queries and documents alike, so a relevant document repeats the query's
# phrase. Measured with a minimal InfoNCE loop on a from-scratch tiny Qwen3 (lr 3e-3, batch 8):
# the training loss left its initial plateau after ~250 steps with this layout, and not within
# 400 steps when the attributes came in free word orders.
QUERY_TEMPLATES = {
    "en": [
        "a {colour} {material} {object} for {use} use",
        "{colour} {material} {object} for {use} use",
        "looking for a {colour} {material} {object} for {use} use",
    ],
    "zh": [
        "适合{use}使用的{colour}{material}{object}",
        "{colour}{material}{object},适合{use}使用",
        "想找一款适合{use}使用的{colour}{material}{object}",
    ],
}

DOC_TEMPLATES = {
    "en": [
        "A {colour} {material} {object} for {use} use. {filler}",
        "{filler} This {colour} {material} {object} is made for {use} use.",
        "{filler} Our {colour} {material} {object} suits {use} use.",
    ],
    "zh": [
        "一款{colour}{material}{object},适合{use}使用。{filler}",
        "{filler}这款{colour}{material}{object}适合{use}使用。",
        "{filler}我们的{colour}{material}{object}专为{use}使用设计。",
    ],
}

FILLERS = {
    "en": [
        "It is easy to clean.",
        "Ships in two days.",
        "Sturdy and light.",
        "Simple to assemble.",
        "A popular choice.",
        "Comes with a warranty.",
    ],
    "zh": ["容易清洁。", "两天内发货。", "结实又轻便。", "安装简单。", "很受欢迎。", "提供保修。"],
}

# Preference data: a question about one attribute of an item.
PREF_PROMPTS = {
    "en": {
        "colour": "Item: {item}. What colour is it?",
        "material": "Item: {item}. What material is it made of?",
        "use": "Item: {item}. Where is it meant to be used?",
    },
    "zh": {
        "colour": "商品:{item}。它是什么颜色?",
        "material": "商品:{item}。它是什么材质?",
        "use": "商品:{item}。它适合在哪里使用?",
    },
}
PREF_ANSWERS = {
    "en": {
        "colour": "It is {value}.",
        "material": "It is made of {value} material.",
        "use": "It is meant for {value} use.",
    },
    "zh": {"colour": "它是{value}的。", "material": "它是{value}材质的。", "use": "它适合{value}使用。"},
}
ITEM_TEMPLATES = {
    "en": "a {colour} {material} {object} for {use} use",
    "zh": "适合{use}使用的{colour}{material}{object}",
}

# VL data: coloured shapes.
VL_COLOURS = {
    "en": ["red", "green", "blue", "yellow", "purple", "orange"],
    "zh": ["红色", "绿色", "蓝色", "黄色", "紫色", "橙色"],
}
VL_RGB = [(220, 30, 30), (30, 160, 60), (40, 70, 220), (235, 200, 20), (140, 50, 170), (245, 130, 20)]
VL_SHAPES = {"en": ["circle", "square", "triangle", "diamond"], "zh": ["圆形", "正方形", "三角形", "菱形"]}
VL_QUESTIONS = {
    "en": {"colour": "What colour is the shape in the image?", "shape": "What shape is shown in the image?"},
    "zh": {"colour": "图中形状是什么颜色?", "shape": "图中是什么形状?"},
}
VL_ANSWERS = {"en": "It is {colour} and shaped like a {shape}.", "zh": "这是一个{colour}的{shape}。"}
