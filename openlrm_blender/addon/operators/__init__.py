"""Every operator the add-on registers."""

from .downloads import OPENLRM_OT_download_background_model
from .generate import OPENLRM_OT_cancel, OPENLRM_OT_free_model, OPENLRM_OT_image_to_3d
from .pytorch import (
    OPENLRM_OT_check_torch,
    OPENLRM_OT_copy_torch_command,
    OPENLRM_OT_install_torch,
    OPENLRM_OT_remove_torch,
    OPENLRM_OT_show_pytorch_preferences,
)
from .tasks import OPENLRM_OT_cancel_task

classes = (
    OPENLRM_OT_image_to_3d,
    OPENLRM_OT_cancel,
    OPENLRM_OT_free_model,
    OPENLRM_OT_show_pytorch_preferences,
    OPENLRM_OT_copy_torch_command,
    OPENLRM_OT_download_background_model,
    OPENLRM_OT_install_torch,
    OPENLRM_OT_check_torch,
    OPENLRM_OT_remove_torch,
    OPENLRM_OT_cancel_task,
)
