"""evaluate.py's fast networks: the shipped one, given weights, or one trained with train.py's own code; then each
stylizes the clip. A multi-style network (the shipped one) paints the evaluation's ``style=NAME``.

Each network is trained as ``python train.py`` would train it, from train.yaml composed with the evaluation's
style, VGG, seed and ``fast_training`` settings, plus the method's own ``overrides`` (its stability terms: none,
the noise term of Rainy & de Berker 2018, or Ruder et al. 2018's synthetic motion). It trains on photos
(``fast_training.data``), never on the clip it is then scored on: the report compares methods on a clip none of
them has seen, as the optimizer's methods have not. A network already trained in
the run folder is reused, so a rerun of the same command goes on where it stopped. The clip is stylized by
infer.py's engine and pipeline, into a lossless frame folder that the report measures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from nst.app.config import plain, style_choice, style_paths
from nst.app.train import train
from nst.errors import NSTError
from nst.evaluation.report import MethodRow
from nst.fastnet.infer.engines import make_engine
from nst.fastnet.infer.pipeline import stylize_video
from nst.fastnet.transformer_net import TransformerNet
from nst.fastnet.weights import load_weights
from nst.gatys.video_store import check_job, style_digests
from nst.io.frames import FrameFolderWriter
from nst.io.video import open_video

TRAINED = "train_style.pt"
TIMING = "train_seconds.json"
#: The settings a network was trained with; a network is reused only under the same.
NETWORK_JOB = "network_job.json"


def _quoted(value: Any) -> str:
    """A value for a Hydra override, quoted so that paths with any characters survive."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    if value is None:
        return "null"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def training_data(cfg: DictConfig, inputs: Path) -> Path:
    """``fast_training.data``, checked to be a folder that is not the evaluated clip nor holds its frames
    (``inputs``: the run's stored input frames): scoring a network on its own training frames says nothing."""
    data = cfg.fast_training.get("data")
    if not data:
        raise NSTError("fast_training.data is empty; give a folder of photos to train the fast networks on "
                       "(default: the bundled assets/content)")
    folder, content = Path(str(data)).expanduser().resolve(), Path(str(cfg.content)).expanduser().resolve()
    for clip in (content, inputs.resolve()):  # a folder of frames inside the photos, or the photos inside it
        if clip.is_dir() and (clip == folder or folder in clip.parents or clip in folder.parents):
            raise NSTError(f"fast_training.data={data} holds the evaluated clip's frames ({clip}); train the fast "
                           "networks on other images (a folder of photos), so they are not scored on their own data")
    return folder


def training_overrides(cfg: DictConfig, name: str, run: Path, data: Path) -> list[str]:
    """train.py overrides of method ``name``: the shared ``fast_training`` settings, then the method's own;
    ``data``: the folder of training photos (:func:`training_data`)."""
    t = cfg.fast_training
    accelerator = {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}.get(str(cfg.device), "auto")
    styles = [str(p) for p in style_paths(cfg.style)]
    overrides = [
        "data=folder", f"data.root={_quoted(data)}", f"data.image_size={t.image_size}",
        f"data.batch_size={t.batch_size}", "data.num_workers=0", "data.num_val=1",
        f"style.image={_quoted(styles if len(styles) > 1 else styles[0])}",
        f"style.blend={_quoted(plain(cfg.style.blend))}" if cfg.style.get("blend") is not None else None,
        *(f"vgg.{k}={_quoted(v)}" for k, v in plain(cfg.vgg).items() if not k.startswith("_")),
        f"loss.content_weight={t.content_weight}", f"loss.style_weight={t.style_weight}",
        f"seed={cfg.seed}", f"paths.output_dir={_quoted(run)}", "logger=csv",
        f"trainer.max_steps={t.steps}", "trainer.max_epochs=-1", f"trainer.accelerator={accelerator}",
        "trainer.val_check_interval=null", "+trainer.limit_val_batches=0", "trainer.enable_model_summary=false",
        "callbacks.checkpoint_best=null", "callbacks.sample_images=null", "callbacks.consistency=null",
        *plain(t.overrides), *plain(cfg[name].overrides),
    ]
    return [o for o in overrides if o is not None]


def fast_network(cfg: DictConfig, name: str, folder: Path, data: Path, row: MethodRow,
                 device: torch.device) -> TransformerNet:
    """The network of method ``name``: its given ``weights``, the one trained earlier in ``folder``, or a new one."""
    weights = cfg[name].get("weights")
    if weights:
        net = load_weights(weights, map_location=device)
        row.settings = {"weights": Path(str(weights)).name}
        if net.num_styles > 1:
            row.settings["style"] = chosen_style(cfg, net)
            return net.single_style(row.settings["style"])
        return net
    run = folder / "train"
    overrides = training_overrides(cfg, name, run, data)
    row.settings = {"data": Path(data).name, "steps": cfg.fast_training.steps, "size": cfg.fast_training.image_size,
                    **{o.split("=")[0]: o.split("=", 1)[1] for o in plain(cfg[name].overrides)}}
    data = cfg.fast_training.data
    job = {"overrides": [o for o in overrides if not o.startswith(("paths.output_dir=", "data.root="))],
           "data": str(Path(data).resolve()) if data else "the evaluated clip's input frames",
           "style_digest": style_digests(style_paths(cfg.style))}
    check_job(run, job, kept=(TRAINED,), name=NETWORK_JOB)  # the clip's frames are keyed by evaluate.py
    if (run / TRAINED).is_file() and (run / TIMING).is_file():  # trained by an earlier run of this command
        row.train_seconds = json.loads((run / TIMING).read_text())["seconds"]
        print(f"{name}: reusing the network trained in {run}", flush=True)
        return load_weights(run / TRAINED, map_location=device)
    from hydra import compose  # inside evaluate.py's Hydra app: the same config folder

    train_cfg = compose("train", overrides=overrides)
    print(f"{name}: training {train_cfg.trainer.max_steps} steps at {train_cfg.data.image_size} px into {run}",
          flush=True)
    start = time.perf_counter()
    train(train_cfg)
    row.train_seconds = time.perf_counter() - start
    (run / TIMING).write_text(json.dumps({"seconds": row.train_seconds}) + "\n")
    return load_weights(run / TRAINED, map_location=device)


def chosen_style(cfg: DictConfig, net: TransformerNet) -> str:
    """The style a multi-style network paints in the evaluation: the one named by ``style=NAME``, whose painting
    must be the image the report scores against (a network cannot paint an arbitrary ``style.image``)."""
    choice = style_choice(cfg.style)
    images = [p.resolve() for p in style_paths(cfg.style)]
    named = plain(cfg.style.get("paintings")) or {}
    paintings = {str(k): Path(str(v)).expanduser().resolve() for k, v in named.items()}
    painting = paintings.get(str(choice))
    if not isinstance(choice, str) or painting is None or images != [painting]:
        raise NSTError(f"the network paints {', '.join(net.styles)}; score it with style=NAME of one of them "
                       f"(style.image={', '.join(map(str, images))} is not its painting)")
    net.style_index(choice)  # a name the network does not paint: one error line
    return choice


def stylize_frames(net: TransformerNet, inputs: Path, output: Path, device: torch.device, batch: int,
                   overwrite: bool = False) -> float:
    """Stylize the frame folder ``inputs`` into the frame folder ``output`` as infer.py does; seconds per frame."""
    with open_video(inputs) as reader:
        count = int(reader.frame_count or 0)
        engine = make_engine(net, device, "auto", "auto", False, batch, count)
        start = time.perf_counter()
        with FrameFolderWriter(output, width=reader.width, height=reader.height, overwrite=overwrite) as writer:
            frames = stylize_video(engine, reader, writer, batch_size=batch)
    return (time.perf_counter() - start) / max(frames, 1)
