"""`mskbench predict` (DESIGN §13): masks for unlabeled studies through the runner's own inference path.

:mod:`.setup` (model, prompter, labels from a suite or the command line),
:mod:`.inputs` (files, DICOM series, dataset subjects), :mod:`.pipeline`
(one study at a time), :mod:`.outputs` (NIfTI on the input grid, QC PNGs),
:mod:`.dicom_seg` (DICOM SEG), :mod:`.sidecar` (the JSON record per study).
"""
