"""Dataset readers and converters (Pascal VOC, YOLO txt, CholecT50 JSON, COCO, Cholec80 txt)."""
