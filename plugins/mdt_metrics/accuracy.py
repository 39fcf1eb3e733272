"""Translation accuracy: do translated images show their target labels?

A classifier (a timm backbone, trained from scratch) learns each dataset's labels on
its real training images. It then reads the held-out images translated to every
sample-grid target. This is StarGAN's protocol for RaFD (Table 3), applied to any
dataset: the real-image accuracy says how far the judge itself can be trusted.
For datasets with one domain per image, ``domain_accuracy`` is the share of
translated images the classifier assigns to the requested domain.
"""

from __future__ import annotations

import torch

from mdt.data import collate
from mdt.labels import column_labels, part_loss, part_predict


def train_classifier(dataset, schema, augmentation, device, backbone: str, steps: int, batch_size: int, lr: float, seed: int):
    import timm

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = timm.create_model(backbone, pretrained=False, num_classes=len(schema)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    model.train()
    for _ in range(steps):
        indices = torch.randint(0, len(dataset), (batch_size,), generator=generator).tolist()
        raw = collate([dataset[i] for i in indices])
        if raw.images.numel() == 0:
            continue
        images = augmentation(raw.images.to(device), train=True)
        loss = part_loss(schema, model(images), raw.labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


class TranslationAccuracy:
    """Share of target labels a separately trained classifier reads off translated test images."""

    def __init__(self, backbone: str = "resnet18", steps: int = 300, batch_size: int = 64, lr: float = 1e-3, max_images: int = 256, seed: int = 0) -> None:
        self.backbone, self.steps, self.batch_size, self.lr = backbone, steps, batch_size, lr
        self.max_images, self.seed = max_images, seed

    @torch.no_grad()
    def _read(self, classifier, schema, images):
        return part_predict(schema, classifier(images))

    def __call__(self, components) -> dict[str, float]:
        device = components.device
        translator = components.method.translator()
        encoder = components.label_encoder
        results: dict[str, float] = {}
        correct_real = total_real = correct_fake = total_fake = correct_changed = total_changed = 0.0
        correct_domain = total_domain = 0.0
        classifiers = {}
        for index, (train, schema) in enumerate(zip(components.train_sets, components.schemas)):
            with torch.enable_grad():
                classifiers[index] = train_classifier(
                    train, schema, components.augmentation, device, self.backbone, self.steps, self.batch_size, self.lr, self.seed
                )
        for source, test in enumerate(components.test_sets):
            count = min(len(test), self.max_images)
            for start in range(0, count, self.batch_size):
                raw = collate([test[i] for i in range(start, min(count, start + self.batch_size))])
                if raw.images.numel() == 0:
                    continue
                images = components.augmentation(raw.images.to(device), train=False)
                labels = raw.labels.to(device)
                schema = components.schemas[source]
                hits = self._read(classifiers[source], schema, images) == labels
                correct_real += hits.sum().item()
                total_real += hits.numel()
                for title, target, assignments in encoder.targets():
                    target_schema = components.schemas[target]
                    base = labels if target == source else translator.read_labels(images, target)
                    wanted = column_labels(target_schema, base, assignments)
                    fake = translator.to_labels(images, wanted, target)
                    read = self._read(classifiers[target], target_schema, fake)
                    changed = (wanted != base) if target == source else torch.zeros_like(wanted, dtype=torch.bool)
                    for name in assignments:
                        changed[:, target_schema.index(name)] = True
                    right = read == wanted
                    if target_schema.categorical:  # one domain per image: is it the requested one?
                        correct_domain += right.all(dim=1).sum().item()
                        total_domain += right.shape[0]
                    if target == source:
                        correct_fake += right.sum().item()
                        total_fake += right.numel()
                    correct_changed += right[changed].sum().item()
                    total_changed += changed.sum().item()
                    key = f"changed/{title}"
                    results[key] = results.get(key, 0.0) + right[changed].sum().item()
                    results[key + "#n"] = results.get(key + "#n", 0.0) + changed.sum().item()
        per_label = {k: results[k] / max(1.0, results[k + "#n"]) for k in results if not k.endswith("#n")}
        domain = {"domain_accuracy": correct_domain / total_domain} if total_domain else {}
        return {
            "real_accuracy": correct_real / max(1.0, total_real),
            "translated_accuracy": correct_fake / max(1.0, total_fake),
            "changed_accuracy": correct_changed / max(1.0, total_changed),
            **domain,
            **per_label,
        }
