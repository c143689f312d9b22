"""Networks trained elsewhere and rebuilt in torch from their own published files (read at run time, never copied
into the repository): dlib's face recognition ResNet (`dlib_resnet`)."""
