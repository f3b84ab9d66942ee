"""What dermatologists produce and how far to trust it.

`agreement` (box F1, kappa, reliability), `suspects` (scoring suspect labels, pure) and `second_look` (sending
them back), `missed_lesions` (few-lesion photos whose evidence says otherwise), `label_export` (YOLO, COCO,
Label Studio). May import detector, infra, `pipelines.cases.routing` and `pipelines.cases.photos` (stored photos
read in sRGB); not mlops or tasks.
"""
