"""Synthetic substitution pairs for the per-character tests (Praat/eSpeak voices).

Each case: a sentence, the index of the character replaced in the attempt and its
replacement. Reference and attempt are spoken by different voices. The replacements
change the syllable's sounds (initial and/or final); ``TONE_CASES`` change only the
tone (買 mai3 / 賣 mai4).
"""

from __future__ import annotations

SEGMENTAL_CASES: tuple[tuple[str, int, str], ...] = (
    ("我今天很高興見到你", 4, "低"),
    ("請把窗戶打開讓空氣流通", 5, "關"),
    ("我們明天早上一起去公園散步", 6, "八"),
    ("今天的天氣非常好", 3, "地"),
    ("他想去商店買水果", 2, "來"),
    ("我喜歡吃蘋果和香蕉", 3, "喝"),
    ("這本書非常有意思", 2, "刀"),
    ("請你幫我打電話", 2, "拿"),
    ("明天我們去看電影", 5, "買"),
    ("小狗在公園裡跑步", 1, "貓"),
    ("老師在教室上課", 1, "虎"),
    ("我每天早上喝牛奶", 6, "咖"),
    ("外面正在下大雨", 5, "小"),
    ("媽媽做的菜很好吃", 4, "飯"),
    ("他騎自行車去學校", 1, "開"),
    ("我們一起唱歌跳舞", 4, "聽"),
    ("這個蘋果很甜", 5, "酸"),
    ("弟弟喜歡畫畫", 4, "讀"),
    ("請打開窗戶", 1, "推"),
    ("我的朋友住在台北", 3, "人"),
    ("爸爸在廚房做飯", 5, "洗"),
    ("我想喝一杯熱茶", 5, "冰"),
)
TONE_CASES: tuple[tuple[str, int, str], ...] = (
    ("他想去商店買水果", 5, "賣"),
    ("我要買很多書", 2, "賣"),
)
VOICE_PAIRS: tuple[tuple[str, str], ...] = (("Female1", "Male1"), ("Male1", "Female2"), ("Female3", "Male2"))
